// Live views of the console: the overview's traffic chart and figures, the device page's latest values, charts,
// shadow, commands and events. The pages are rendered on the server; this script only keeps them current. It reads
// the platform's own API (the sign-in cookie grants GET), over Server-Sent Events for what changes.
"use strict";

const fieldline = (() => {
  const maxPoints = 2000;

  /** Fetches JSON from the API; a problem (RFC 7807) becomes an Error carrying its title and detail. */
  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const problem = await response.json();
        const fields = problem.errors ? Object.entries(problem.errors).map(([k, v]) => `${k} ${v.join(", ")}`).join("; ") : "";
        message = [problem.title, problem.detail, fields].filter(Boolean).join(": ");
      } catch { /* not a problem document */ }
      throw new Error(message);
    }
    return response.json();
  }

  /**
   * An EventSource that shows its state in the page's live indicator. The browser reconnects by itself after an error;
   * a stream the server refused (signed out) stays closed and says so. While the tab is hidden the stream is closed,
   * so that background tabs do not hold the browser's few connections to the host, and it opens again, resuming
   * after the last event id it saw, when the tab is shown. `url(lastEventId)` gives the address to open.
   */
  function stream(url, handlers, lastEventId) {
    const indicator = document.querySelector("[data-live-state]");
    const show = (text, state) => { if (indicator) { indicator.textContent = text; indicator.dataset.liveState = state; } };
    let source = null;
    let last = lastEventId ?? null;
    function open() {
      source = new EventSource(url(last));
      source.onopen = () => show("live", "open");
      source.onerror = () => source.readyState === EventSource.CLOSED
        ? show("stopped: reload the page", "error")
        : show("reconnecting…", "error");
      for (const [type, handler] of Object.entries(handlers)) {
        source.addEventListener(type, (e) => {
          if (e.lastEventId) last = e.lastEventId;
          handler(JSON.parse(e.data));
        });
      }
    }
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) { source?.close(); source = null; show("paused", "paused"); }
      else if (!source) open();
    });
    window.addEventListener("pagehide", () => source?.close());
    open();
  }

  function formatTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function formatRate(rate) {
    return rate >= 100 ? String(Math.round(rate)) : rate.toFixed(1);
  }

  function formatValue(value) {
    return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  }

  /** A uPlot chart that fills its container's width and follows it when the window is resized. */
  function chart(container, series, height, window) {
    const plot = new uPlot({
      width: Math.max(container.clientWidth, 200),
      height: height,
      series: [{}, ...series],
      axes: [{}, { size: 60 }],
      // The x axis spans the chosen window, not just the points: one point or none still reads as "the last hour".
      scales: { x: { time: true, range: () => window() } },
      legend: { live: true },
    }, [[], ...series.map(() => [])], container);
    new ResizeObserver(() => plot.setSize({ width: Math.max(container.clientWidth, 200), height: height })).observe(container);
    return plot;
  }

  function addEventRow(tbody, e, columns, keep) {
    const row = document.createElement("tr");
    for (const text of columns(e)) {
      const cell = document.createElement("td");
      cell.textContent = text ?? "";
      row.appendChild(cell);
    }
    tbody.prepend(row);
    while (tbody.rows.length > keep) tbody.deleteRow(tbody.rows.length - 1);
  }

  /** The latest events table: rows are added at the top as events arrive. */
  function liveEvents(section, columns) {
    const tbody = section.querySelector("tbody");
    const empty = section.querySelector("[data-empty]");
    return (e) => {
      if (empty) { empty.hidden = true; tbody.closest("table").hidden = false; }
      addEventRow(tbody, e, columns, 20);
    };
  }

  // ---- Overview ----
  function overview(root) {
    const container = root.querySelector("[data-chart=traffic]");
    const windowSeconds = 15 * 60;
    let end = Date.now() / 1000;
    const plot = chart(container, [
      { label: "in (msg/s)", stroke: "#0b6bcb", width: 2, points: { show: false } },
      { label: "out (msg/s)", stroke: "#1a7f37", width: 2, points: { show: false } },
    ], 220, () => [end - windowSeconds, end]);
    const data = [[], [], []];

    stream(() => "/api/v1/system/stats/stream", {
      stats: (stats) => {
        for (const [status, count] of Object.entries(stats.devices.by_status)) {
          const figure = root.querySelector(`[data-status="${status}"]`);
          if (figure) figure.textContent = count;
        }
        for (const [type, count] of Object.entries(stats.devices.by_type)) {
          const figure = root.querySelector(`[data-type="${type}"]`);
          if (figure) figure.textContent = count;
        }
        const clients = root.querySelector("[data-figure=mqtt-clients]");
        if (clients) clients.textContent = stats.mqtt.connections;
        for (const sample of stats.traffic.samples) {
          // A stream opened again resends the history: keep each sample once, in time order.
          if (data[0].length && sample.time / 1000 <= data[0][data[0].length - 1]) continue;
          data[0].push(sample.time / 1000);
          data[1].push(sample.in);
          data[2].push(sample.out);
        }
        end = Date.parse(stats.time) / 1000;
        const oldest = end - windowSeconds;
        while (data[0].length && data[0][0] < oldest) data.forEach((s) => s.shift());
        const last = data[0].length - 1;
        container.dataset.samples = data[0].length;
        if (last >= 0) {
          container.dataset.lastIn = data[1][last];
          container.dataset.lastOut = data[2][last];
          root.querySelector("[data-figure=rate-in]").textContent = formatRate(data[1][last]);
          root.querySelector("[data-figure=rate-out]").textContent = formatRate(data[2][last]);
        }
        plot.setData(data);
      },
    });

    const events = root.querySelector("[data-live-events]");
    const onEvent = liveEvents(events, (e) => [formatTime(Date.parse(e.timestamp)), e.event_type, e.metadata?.device_id, e.source]);
    // DataReceived is left out: a fleet sends one per device every few seconds, more than a page can show; each
    // device's page lists its own.
    const types = ["DeviceRegistered", "DeviceDeleted", "DeviceConnected", "DeviceDisconnected", "ShadowUpdated", "CommandStateChanged"];
    const handlers = {};
    for (const type of types) handlers[type] = onEvent;
    stream((last) => `/api/v1/events?type=${types.join(",")}${last ? `&last_event_id=${last}` : ""}`, handlers, events.dataset.lastEventId);
  }

  // ---- Device page ----
  const ranges = { "15m": 15 * 60, "1h": 3600, "24h": 86400, "7d": 7 * 86400 };

  function metricChart(deviceId, figure) {
    const metric = figure.dataset.chartMetric;
    const container = figure.querySelector("[data-chart]");
    const status = figure.querySelector("[data-chart-status]");
    const state = { range: "15m", from: 0, to: 0, window: [Date.now() / 1000 - ranges["15m"], Date.now() / 1000], data: [[], []] };
    const plot = chart(container, [{ label: metric, stroke: "#0b6bcb", width: 2 }], 200, () => state.window);

    function show() {
      plot.setData(state.data);
      container.dataset.points = state.data[0].length;
    }

    async function load() {
      const now = Date.now();
      const [from, to] = state.range === "custom" ? [state.from, state.to] : [now - ranges[state.range] * 1000, now];
      // At most about 1,000 buckets (whole seconds each) reach the browser, whatever the range.
      const interval = Math.max(1, Math.ceil((to - from) / 1000 / 1000));
      state.window = [from / 1000, to / 1000];
      status.textContent = "Loading…";
      try {
        const buckets = await getJson(`/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry/${encodeURIComponent(metric)}/aggregate?from=${from}&to=${to}&interval=${interval}s`);
        state.data = [buckets.map((b) => b.start / 1000), buckets.map((b) => b.mean)];
        status.textContent = buckets.length ? `${buckets.length} ${buckets.length === 1 ? "point" : "points"}, mean per ${interval} s` : "No points in this range.";
        status.classList.remove("error");
      } catch (error) {
        state.data = [[], []];
        status.textContent = `Could not load the chart: ${error.message}`;
        status.classList.add("error");
      }
      show();
    }

    for (const button of figure.querySelectorAll("button[data-range]")) {
      button.addEventListener("click", () => {
        state.range = button.dataset.range;
        for (const other of figure.querySelectorAll("button[data-range]")) other.setAttribute("aria-pressed", String(other === button));
        figure.querySelector("form.custom-range").hidden = state.range !== "custom";
        if (state.range !== "custom") load();
      });
    }
    figure.querySelector("form.custom-range").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target;
      const from = Date.parse(form.elements.from.value);
      const to = Date.parse(form.elements.to.value);
      if (Number.isNaN(from) || Number.isNaN(to) || from >= to) {
        status.textContent = "The custom range needs a start before its end.";
        status.classList.add("error");
        return;
      }
      state.from = from;
      state.to = to;
      load();
    });

    load();
    return {
      /** A live point: added while the range ends now, the oldest dropped as the window moves on. */
      add(timestampMs, value) {
        if (state.range === "custom") return;
        const [times, values] = state.data;
        const t = timestampMs / 1000;
        if (times.length && t < times[times.length - 1]) return;
        times.push(t);
        values.push(value);
        const now = Date.now() / 1000;
        const oldest = now - ranges[state.range];
        state.window = [oldest, Math.max(now, t)];
        while (times.length && (times[0] < oldest || times.length > maxPoints)) { times.shift(); values.shift(); }
        status.textContent = `${times.length} ${times.length === 1 ? "point" : "points"}, the newest as they arrive`;
        status.classList.remove("error");
        show();
      },
    };
  }

  function device(root) {
    const deviceId = root.dataset.liveDevice;
    const charts = new Map();
    for (const figure of root.querySelectorAll("[data-chart-metric]")) {
      charts.set(figure.dataset.chartMetric, metricChart(deviceId, figure));
    }

    const latest = root.querySelector("table.latest tbody");
    const desired = root.querySelector("#desired");
    let desiredEdited = false; // the desired-state editor
    let edited = false; // any form on the page
    desired?.addEventListener("input", () => { desiredEdited = true; });
    for (const form of root.querySelectorAll("form")) form.addEventListener("input", () => { edited = true; });

    stream(() => `/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry/live`, {
      telemetry: (message) => {
        for (const point of message.points) {
          const at = Date.parse(point.timestamp);
          let row = latest ? [...latest.rows].find((r) => r.dataset.metric === point.metric) : null;
          if (!row) {
            // A metric the page has not seen: the page rendered again shows it with its chart, unless that would
            // throw away what the operator is typing.
            if (!edited) { location.reload(); return; }
            const notice = root.querySelector("[data-new-metric]");
            notice.textContent = `New metric ${point.metric}: reload the page to see it.`;
            notice.hidden = false;
            continue;
          }
          const current = Number(row.dataset.at || 0);
          if (at >= current) {
            row.dataset.at = at;
            row.querySelector(".value").textContent = formatValue(point.value);
            row.querySelector(".unit").textContent = point.unit ?? "";
            row.querySelector(".at").textContent = formatTime(at);
          }
          charts.get(point.metric)?.add(at, point.value);
        }
      },
    });

    const events = root.querySelector("[data-live-events]");
    const onEvent = liveEvents(events, (e) => [formatTime(Date.parse(e.timestamp)), e.event_type, e.source, summary(e)]);
    const handlers = {
      DeviceConnected: (e) => { onEvent(e); setStatus("online"); },
      DeviceDisconnected: (e) => { onEvent(e); setStatus("offline"); },
      DataReceived: onEvent,
      ShadowUpdated: (e) => { onEvent(e); refreshShadow(); },
      CommandStateChanged: (e) => { onEvent(e); commandChanged(e.payload); },
      DeviceDeleted: (e) => { onEvent(e); setStatus("deleted"); },
    };
    stream((last) => `/api/v1/events?device=${encodeURIComponent(deviceId)}${last ? `&last_event_id=${last}` : ""}`, handlers, events.dataset.lastEventId);

    function setStatus(status) {
      const badge = root.querySelector("[data-device-status]");
      badge.textContent = status;
      badge.className = `badge status-${status}`;
    }

    function summary(e) {
      const p = e.payload ?? {};
      switch (e.event_type) {
        case "DataReceived": return `${p.points} points in ${p.messages} messages`;
        case "ShadowUpdated": return `version ${p.version}`;
        case "CommandStateChanged": return `${p.type} ${p.command_id}: ${p.state}`;
        default: return p.reason ?? "";
      }
    }

    async function refreshShadow() {
      const status = root.querySelector("[data-shadow-status]");
      try {
        const shadow = await getJson(`/api/v1/devices/${encodeURIComponent(deviceId)}/shadow`);
        for (const section of ["desired", "reported", "delta"]) {
          root.querySelector(`pre[data-section=${section}]`).textContent = JSON.stringify(shadow.state[section], null, 2);
        }
        root.querySelector("[data-shadow-version]").textContent = shadow.version;
        root.querySelector(".delta").classList.toggle("open", Object.keys(shadow.state.delta).length > 0);
        if (!desiredEdited && desired) {
          // The editor follows the shadow until the operator starts typing; then a save names the version edited.
          desired.value = JSON.stringify(shadow.state.desired, null, 2);
          root.querySelector("#desired-version").value = shadow.version;
          root.querySelector("[data-desired-version]").textContent = shadow.version;
        }
        status.textContent = "";
      } catch (error) {
        status.textContent = `Could not refresh the shadow: ${error.message}`;
      }
    }

    function commandChanged(p) {
      const tbody = root.querySelector("table.commands tbody");
      let row = tbody ? [...tbody.rows].find((r) => r.dataset.command === p.command_id) : null;
      if (!row) {
        if (!tbody) { location.reload(); return; }
        row = document.createElement("tr");
        row.dataset.command = p.command_id;
        for (const name of ["id", "type", "state", "created", "message"]) {
          const cell = document.createElement("td");
          cell.className = name;
          row.appendChild(cell);
        }
        row.querySelector(".id").textContent = p.command_id;
        row.querySelector(".type").textContent = p.type;
        row.querySelector(".created").textContent = formatTime(Date.now());
        tbody.prepend(row);
      }
      row.querySelector(".state").textContent = p.state;
      row.querySelector(".message").textContent = p.message ?? "";
    }
  }

  return { overview, device };
})();

document.addEventListener("DOMContentLoaded", () => {
  const overview = document.querySelector("[data-live=overview]");
  if (overview) fieldline.overview(overview);
  const device = document.querySelector("[data-live-device]");
  if (device) fieldline.device(device);
});
