// MQTT 5 interoperability scenarios between MQTT.js and the Fieldline broker.
//
//   node scenarios.mjs <port> <scenario>
//
// Connects to 127.0.0.1:<port> with MQTT.js (protocol version 5), or to the URL in MQTTJS_URL (for example
// ws://127.0.0.1:<port>/mqtt for MQTT over WebSocket), runs one scenario and prints one JSON line:
// { "scenario", "ok", "failures": [...], ...what was observed }. Exit code 0 when ok, 1 otherwise.
// A scenario that needs the broker's clock moved prints { "pause": ..., "advanceSeconds": N } first and waits
// for a line on standard input (MqttJsTests moves its FakeTimeProvider, then writes "resume").
// Every wait is bounded; nothing sleeps a fixed time.
import mqtt from 'mqtt';
import { createInterface } from 'node:readline';

const STEP_TIMEOUT_MS = 10_000;
const OVERALL_TIMEOUT_MS = 45_000;

const [portArgument, scenarioName] = process.argv.slice(2);
const port = Number(portArgument);
const url = process.env.MQTTJS_URL || `mqtt://127.0.0.1:${port}`;
const failures = [];
const clients = [];

function check(condition, message) {
  if (!condition) {
    failures.push(message);
  }
}

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Connects one MQTT.js client; resolves with the client, its CONNACK and its inbox. The inbox listens from the
 * start: a session's queued messages follow CONNACK at once, before a listener added after connecting would see them.
 * Errors after connecting are failures.
 */
function connect(clientId, options = {}) {
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: STEP_TIMEOUT_MS,
    ...options,
  });
  clients.push(client);
  const received = inbox(client);
  const connected = new Promise((resolve, reject) => {
    client.once('connect', (connack) => resolve({ client, connack, received }));
    client.once('error', reject);
    client.once('close', () => reject(new Error(`${clientId}: connection closed before CONNACK`)));
  });
  return withTimeout(connected, `${clientId} to connect`).then((result) => {
    client.removeAllListeners('error');
    client.on('error', (error) => failures.push(`${clientId}: error event: ${error.message}`));
    return result;
  });
}

/** Records every PUBLISH a client receives, and lets a scenario wait for a condition over them. */
function inbox(client) {
  const messages = [];
  const waiters = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({
      topic,
      payload: payload.toString('utf8'),
      qos: packet.qos,
      properties: packet.properties ?? {},
    });
    for (const waiter of [...waiters]) {
      if (waiter.condition(messages)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(messages);
      }
    }
  });
  return {
    messages,
    until(condition, what) {
      if (condition(messages)) {
        return Promise.resolve(messages);
      }
      return withTimeout(new Promise((resolve) => waiters.push({ condition, resolve })), what).catch((error) => {
        throw new Error(`${error.message}; received so far: ${JSON.stringify(messages.map((m) => m.topic))}`);
      });
    },
    count(n, what) {
      return this.until((all) => all.length >= n, what);
    },
  };
}

async function subscribe(client, filter, qos = 1) {
  const granted = await withTimeout(client.subscribeAsync(filter, { qos }), `SUBACK for ${filter}`);
  check(granted.length === 1 && granted[0].qos === qos, `SUBACK for ${filter} granted ${JSON.stringify(granted)}, expected QoS ${qos}`);
}

function end(client) {
  return withTimeout(client.endAsync(), `${client.options.clientId} to disconnect`);
}

/** Prints a pause line and waits for the test to answer on standard input. */
function pause(reason, advanceSeconds) {
  console.log(JSON.stringify({ pause: reason, advanceSeconds }));
  const lines = createInterface({ input: process.stdin });
  const answered = new Promise((resolve) => lines.once('line', resolve));
  return withTimeout(answered, `the test to answer the pause "${reason}"`).finally(() => lines.close());
}

function sameBytes(a, b) {
  return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
}

const scenarios = {
  /** User properties, repeated keys and their order included, arrive as sent at QoS 0 and QoS 1. */
  async 'user-properties'() {
    const { client: subscriber, received } = await connect('mqttjs-up-sub');
    await subscribe(subscriber, 'up/#');
    const { client: publisher } = await connect('mqttjs-up-pub');
    const sent = { site: 'north', tag: ['a', 'b', 'a'], 'ключ': 'значение ✓' };
    await withTimeout(publisher.publishAsync('up/qos0', 'zero', { qos: 0, properties: { userProperties: sent } }), 'QoS 0 publish');
    await withTimeout(publisher.publishAsync('up/qos1', 'one', { qos: 1, properties: { userProperties: sent } }), 'PUBACK');
    await received.count(2, 'both messages');
    for (const message of received.messages) {
      check(JSON.stringify(message.properties.userProperties) === JSON.stringify(sent),
        `${message.topic}: user properties ${JSON.stringify(message.properties.userProperties)}, expected ${JSON.stringify(sent)}`);
    }
    return {
      sent,
      received: received.messages.map((m) => ({ topic: m.topic, qos: m.qos, userProperties: m.properties.userProperties ?? null })),
    };
  },

  /**
   * A persistent subscriber goes offline; three messages wait for it (expiry 10 s, 100 s, none); the broker's clock
   * moves past the first. Back online, it gets the second with the remaining interval and the third without one.
   */
  async 'message-expiry'() {
    const persistent = { clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await connect('mqttjs-late', persistent);
    await subscribe(first.client, 'exp/#');
    await end(first.client);

    const { client: publisher } = await connect('mqttjs-exp-pub');
    await withTimeout(publisher.publishAsync('exp/short', 'short', { qos: 1, properties: { messageExpiryInterval: 10 } }), 'PUBACK exp/short');
    await withTimeout(publisher.publishAsync('exp/long', 'long', { qos: 1, properties: { messageExpiryInterval: 100 } }), 'PUBACK exp/long');
    await withTimeout(publisher.publishAsync('exp/none', 'none', { qos: 1 }), 'PUBACK exp/none');

    const advanceSeconds = 30;
    await pause('advance-clock', advanceSeconds);

    const back = await connect('mqttjs-late', persistent);
    check(back.connack.sessionPresent === true, `session present ${back.connack.sessionPresent} on reconnect, expected true`);
    const { received } = back;
    // A message published now queues behind whatever the session held: once it arrives, nothing older can follow.
    await withTimeout(publisher.publishAsync('exp/marker', 'marker', { qos: 1 }), 'PUBACK exp/marker');
    await received.until((all) => all.some((m) => m.topic === 'exp/marker'), 'exp/marker');

    const topics = received.messages.map((m) => m.topic);
    check(JSON.stringify(topics) === JSON.stringify(['exp/long', 'exp/none', 'exp/marker']),
      `received ${JSON.stringify(topics)}, expected ["exp/long","exp/none","exp/marker"] (exp/short expired)`);
    const long = received.messages.find((m) => m.topic === 'exp/long');
    check(long?.properties.messageExpiryInterval === 100 - advanceSeconds,
      `exp/long message expiry interval ${long?.properties.messageExpiryInterval}, expected ${100 - advanceSeconds}`);
    const none = received.messages.find((m) => m.topic === 'exp/none');
    check(none !== undefined && none.properties.messageExpiryInterval === undefined,
      `exp/none message expiry interval ${none?.properties.messageExpiryInterval}, expected none`);
    return {
      sessionPresent: back.connack.sessionPresent,
      received: received.messages.map((m) => ({ topic: m.topic, messageExpiryInterval: m.properties.messageExpiryInterval ?? null })),
    };
  },

  /**
   * Aliases both ways. Towards the broker: MQTT.js assigns them itself (autoAssignTopicAlias) on one publisher,
   * and another sets one explicitly, then reuses it with an empty topic and through autoUseTopicAlias. Towards
   * MQTT.js: a subscriber that accepts 2 aliases gets aliased PUBLISHes from the broker for 4 topics.
   */
  async 'topic-aliases'() {
    const { client: subscriber, received } = await connect('mqttjs-alias-sub', { properties: { topicAliasMaximum: 2 } });
    const wire = [];
    subscriber.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') {
        wire.push({ topic: packet.topic.toString(), alias: packet.properties?.topicAlias ?? null });
      }
    });
    await subscribe(subscriber, 'alias/#');

    const automatic = await connect('mqttjs-alias-auto', { autoAssignTopicAlias: true });
    check((automatic.connack.properties?.topicAliasMaximum ?? 0) > 0,
      `CONNACK topic alias maximum ${automatic.connack.properties?.topicAliasMaximum}, expected > 0`);
    const automaticSent = [];
    automatic.client.on('packetsend', (packet) => {
      if (packet.cmd === 'publish') {
        automaticSent.push({ topic: packet.topic.toString(), alias: packet.properties?.topicAlias ?? null });
      }
    });
    const expected = [];
    for (let round = 0; round < 3; round++) {
      for (const topic of ['alias/a', 'alias/b', 'alias/c', 'alias/d']) {
        const payload = `auto-${topic}-${round}`;
        await withTimeout(automatic.client.publishAsync(topic, payload, { qos: 1 }), `PUBACK ${payload}`);
        expected.push({ topic, payload });
      }
    }

    const { client: explicit } = await connect('mqttjs-alias-explicit', { autoUseTopicAlias: true });
    const explicitSent = [];
    explicit.on('packetsend', (packet) => {
      if (packet.cmd === 'publish') {
        explicitSent.push({ topic: packet.topic.toString(), alias: packet.properties?.topicAlias ?? null });
      }
    });
    await withTimeout(explicit.publishAsync('alias/explicit', 'set', { qos: 1, properties: { topicAlias: 7 } }), 'PUBACK set');
    await withTimeout(explicit.publishAsync('', 'empty', { qos: 1, properties: { topicAlias: 7 } }), 'PUBACK empty');
    await withTimeout(explicit.publishAsync('alias/explicit', 'reused', { qos: 1 }), 'PUBACK reused');
    expected.push({ topic: 'alias/explicit', payload: 'set' }, { topic: 'alias/explicit', payload: 'empty' }, { topic: 'alias/explicit', payload: 'reused' });

    await received.count(expected.length, `${expected.length} messages`);
    const got = received.messages.map((m) => ({ topic: m.topic, payload: m.payload }));
    check(JSON.stringify(got) === JSON.stringify(expected), `subscriber received ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
    check(automaticSent.some((p) => p.topic === '' && p.alias !== null), `autoAssignTopicAlias never sent an empty topic: ${JSON.stringify(automaticSent)}`);
    check(JSON.stringify(explicitSent.map((p) => p.topic)) === JSON.stringify(['alias/explicit', '', '']) && explicitSent.every((p) => p.alias === 7),
      `explicit publisher sent ${JSON.stringify(explicitSent)}, expected alias 7 with the topic once, then empty topics`);
    check(wire.some((p) => p.topic === '' && p.alias !== null), `the broker never sent an aliased empty topic: ${JSON.stringify(wire)}`);
    check(wire.every((p) => p.alias === null || (p.alias >= 1 && p.alias <= 2)), `the broker used aliases beyond the maximum of 2: ${JSON.stringify(wire)}`);
    return {
      brokerTopicAliasMaximum: automatic.connack.properties?.topicAliasMaximum ?? null,
      automaticSent,
      explicitSent,
      wire,
      received: got,
    };
  },

  /** Two MQTT.js members of one shared subscription: every message reaches exactly one of them. */
  async 'shared-subscription'() {
    const members = {};
    for (const name of ['a', 'b']) {
      const { client, received } = await connect(`mqttjs-member-${name}`);
      members[name] = { client, received };
      await subscribe(client, '$share/workers/jobs/#');
      // A plain subscription as a barrier: it is published after the jobs, so once it arrives, every job routed
      // to this member has arrived before it.
      await subscribe(client, `barrier/${name}`);
    }

    const { client: publisher } = await connect('mqttjs-jobs-pub');
    const jobs = Array.from({ length: 20 }, (_, i) => `job-${i}`);
    for (const job of jobs) {
      await withTimeout(publisher.publishAsync(`jobs/${job}`, job, { qos: 1 }), `PUBACK ${job}`);
    }
    for (const name of Object.keys(members)) {
      await withTimeout(publisher.publishAsync(`barrier/${name}`, 'end', { qos: 1 }), `PUBACK barrier/${name}`);
    }
    for (const [name, member] of Object.entries(members)) {
      await member.received.until((all) => all.some((m) => m.topic === `barrier/${name}`), `barrier/${name} at member ${name}`);
    }

    const perMember = Object.fromEntries(Object.entries(members).map(([name, m]) =>
      [name, m.received.messages.filter((x) => x.topic.startsWith('jobs/')).map((x) => x.payload)]));
    const all = Object.values(perMember).flat();
    const missing = jobs.filter((job) => !all.includes(job));
    const duplicated = jobs.filter((job) => all.filter((x) => x === job).length > 1);
    check(missing.length === 0, `jobs that reached no member: ${JSON.stringify(missing)}`);
    check(duplicated.length === 0, `jobs that reached more than one member: ${JSON.stringify(duplicated)}`);
    check(all.length === jobs.length, `${all.length} deliveries for ${jobs.length} jobs`);
    for (const [name, got] of Object.entries(perMember)) {
      check(got.length > 0, `member ${name} received no job: the messages were not split`);
    }
    return { published: jobs.length, perMember, missing, duplicated };
  },

  /** A requester sends requests with a response topic and binary correlation data; a responder answers each. */
  async 'request-response'() {
    const { client: responder } = await connect('mqttjs-responder');
    const seenByResponder = [];
    responder.on('message', (topic, payload, packet) => {
      const { responseTopic, correlationData } = packet.properties ?? {};
      seenByResponder.push({ topic, responseTopic: responseTopic ?? null, correlationData: correlationData?.toString('hex') ?? null });
      if (responseTopic) {
        responder.publish(responseTopic, `answer to ${payload}`, { qos: 1, properties: { correlationData } });
      }
    });
    await subscribe(responder, 'svc/clock/request');

    const { client: requester, received: responses } = await connect('mqttjs-requester');
    const responseTopic = 'svc/clock/response/mqttjs-requester';
    await subscribe(requester, responseTopic);

    // Binary correlation data, including bytes that are not UTF-8.
    const requests = [Buffer.from([0x00, 0xff, 0x10]), Buffer.from([0xc3, 0x28, 0x01, 0x02]), Buffer.from('req-3', 'utf8')];
    for (const [i, correlationData] of requests.entries()) {
      await withTimeout(requester.publishAsync('svc/clock/request', `r${i}`, { qos: 1, properties: { responseTopic, correlationData } }), `PUBACK r${i}`);
    }
    await responses.count(requests.length, `${requests.length} responses`);

    for (const [i, correlationData] of requests.entries()) {
      const seen = seenByResponder[i];
      check(seen?.responseTopic === responseTopic, `request r${i} reached the responder with response topic ${seen?.responseTopic}`);
      check(seen?.correlationData === correlationData.toString('hex'), `request r${i} reached the responder with correlation data ${seen?.correlationData}, expected ${correlationData.toString('hex')}`);
      const response = responses.messages.find((m) => sameBytes(m.properties.correlationData, correlationData));
      check(response !== undefined, `no response carried correlation data ${correlationData.toString('hex')}`);
      check(response?.payload === `answer to r${i}`, `response for r${i} was ${JSON.stringify(response?.payload)}`);
      check(response?.topic === responseTopic, `response for r${i} arrived on ${response?.topic}`);
    }
    return {
      seenByResponder,
      responses: responses.messages.map((m) => ({ topic: m.topic, payload: m.payload, correlationData: m.properties.correlationData?.toString('hex') ?? null })),
    };
  },
};

async function main() {
  const scenario = scenarios[scenarioName];
  if (!Number.isInteger(port) || port <= 0 || !scenario) {
    console.error(`usage: node scenarios.mjs <port> <${Object.keys(scenarios).join('|')}>`);
    return 1;
  }

  let observed = {};
  try {
    observed = await withTimeout(scenario(), `scenario ${scenarioName}`, OVERALL_TIMEOUT_MS);
  } catch (error) {
    failures.push(error.message);
  }
  await Promise.allSettled(clients.filter((c) => !c.disconnected).map((c) => withTimeout(c.endAsync(true), 'clients to close', 2_000)));
  console.log(JSON.stringify({ scenario: scenarioName, ok: failures.length === 0, failures, ...observed }));
  return failures.length === 0 ? 0 : 1;
}

process.exitCode = await main();
// Open sockets or timers must not keep a finished scenario alive.
process.exit();
