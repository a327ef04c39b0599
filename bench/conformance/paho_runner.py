#!/usr/bin/env python3
"""Runs the Eclipse Paho interoperability client tests against one broker, one test per process.

The Paho scripts (interoperability/client_test.py for MQTT 3.1.1, client_test5.py for 5.0) read the broker's
address from module globals that only their own __main__ sets, and client_test.py refuses -p. This runner imports
the module from a Paho checkout, sets those globals as __main__ would, and runs every test case in a child process
of its own: each test starts from the suite's own clean-up (its setUpClass drops the two client ids' sessions and
every retained message), a test that hangs is killed at the timeout and counted as failed, and the next one runs.

Prints one line per test (PASS, FAIL, ERROR or TIMEOUT) and a summary "N of M passed". Exit code 0 when every test
passed, 1 otherwise, 2 when the suite could not be run at all.

This file is ours; Paho's code is never copied here, only imported from the checkout given on the command line.
"""

import argparse
import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

# Suite name -> (module in interoperability/, what its __main__ sets before unittest.main()).
SUITES = {
    "3.1.1": "client_test",
    "5.0": "client_test5",
}

# Exit codes of a child process running one test.
PASSED, FAILED, ERRORED, NOT_RUN = 0, 1, 2, 3


PACKET_TYPES = ("RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE",
                "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH")


class TraceProxy:
    """A TCP proxy in front of the broker that writes every MQTT packet, both ways, to the current test's trace."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.out = None
        self.started = time.monotonic()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def trace_to(self, path):
        with self.lock:
            if self.out:
                self.out.close()
            self.out = open(path, "w", encoding="utf-8") if path else None
            self.started = time.monotonic()

    def _write(self, line):
        with self.lock:
            if self.out:
                self.out.write("%8.3f %s\n" % (time.monotonic() - self.started, line))
                self.out.flush()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            self.connections += 1
            number = self.connections
            try:
                server = socket.create_connection(self.target)
            except OSError as error:
                self._write("c%d connect to broker failed: %s" % (number, error))
                client.close()
                continue
            self._write("c%d opened" % number)
            for source, sink, arrow in ((client, server, "C->S"), (server, client, "S->C")):
                threading.Thread(target=self._pump, args=(number, source, sink, arrow), daemon=True).start()

    def _pump(self, number, source, sink, arrow):
        pending = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._write("c%d %s closed" % (number, arrow))
                for s in (source, sink):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            pending += data
            pending = self._log_packets(number, arrow, pending)
            try:
                sink.sendall(data)
            except OSError:
                pass

    def _log_packets(self, number, arrow, pending):
        while len(pending) >= 2:
            length, multiplier, index = 0, 1, 1
            while True:
                if index >= len(pending):
                    return pending
                byte = pending[index]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                index += 1
                if not byte & 0x80 or index > 4:
                    break
            end = index + length
            if end > len(pending):
                return pending
            packet, pending = pending[:end], pending[end:]
            first = packet[0]
            shown = packet[:96].hex(" ") + (" ..." if len(packet) > 96 else "")
            self._write("c%d %s %-11s flags=%x len=%d  %s" % (number, arrow, PACKET_TYPES[first >> 4], first & 0x0F, length, shown))
        return pending


def module_globals(module_name, host, port):
    """The globals each script's __main__ block assigns (read from the scripts; setUpClass relies on them)."""
    values = {
        "host": host,
        "port": port,
        "nosubscribe_topics": ("test/nosubscribe",),
    }
    if module_name == "client_test5":
        # client_test5's __main__ prefixes its topics; its setUpClass (setData) then resets topics and wildtopics to
        # the unprefixed ones, so the prefix survives only in topic_prefix, which test_shared_subscriptions uses.
        values["topic_prefix"] = "client_test5/"
        values["topics"] = [values["topic_prefix"] + t for t in ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")]
        values["wildtopics"] = [values["topic_prefix"] + t for t in ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")]
    else:
        values["topics"] = ("TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA")
        values["wildtopics"] = ("TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#")
    return values


def load_suite_module(checkout, module_name, host, port):
    interop = os.path.join(os.path.abspath(checkout), "interoperability")
    if not os.path.isfile(os.path.join(interop, module_name + ".py")):
        raise FileNotFoundError("%s.py not found in %s (is this a paho.mqtt.testing checkout?)" % (module_name, interop))
    sys.path.insert(0, interop)
    module = importlib.import_module(module_name)
    for name, value in module_globals(module_name, host, port).items():
        setattr(module, name, value)
    return module


def test_names(module):
    return unittest.TestLoader().getTestCaseNames(module.Test)


def run_child(args):
    """Runs one test in this process and exits with PASSED, FAILED or ERRORED."""
    import logging

    module = load_suite_module(args.checkout, SUITES[args.suite], args.host, args.port)
    # As the scripts' __main__ does: the clients log every packet at INFO otherwise.
    logging.getLogger().setLevel(logging.ERROR)
    suite = unittest.TestSuite([module.Test(args.child)])
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    sys.stdout.flush()
    sys.stderr.flush()
    if result.errors:
        code = ERRORED
    elif result.failures:
        code = FAILED
    elif result.testsRun == 1 and result.wasSuccessful():
        code = PASSED
    else:
        code = NOT_RUN
    # The Paho client's receiver threads are not daemons: leave without waiting for them.
    os._exit(code)


def run_one(args, name, log_path, host, port):
    command = [sys.executable, os.path.abspath(__file__), args.checkout, "--suite", args.suite,
               "--host", host, "--port", str(port), "--child", name]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = child.wait(timeout=args.timeout)
            verdict = {PASSED: "PASS", FAILED: "FAIL", ERRORED: "ERROR"}.get(code, "ERROR")
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            verdict = "TIMEOUT"
    return verdict, time.monotonic() - started


def run_parent(args):
    module_name = SUITES[args.suite]
    try:
        module = load_suite_module(args.checkout, module_name, args.host, args.port)
    except (ImportError, FileNotFoundError) as error:
        print("paho_runner: cannot load %s: %s" % (module_name, error), file=sys.stderr)
        return 2
    names = test_names(module)
    if args.test:
        unknown = sorted(set(args.test) - set(names))
        if unknown:
            print("paho_runner: no such test in %s: %s" % (module_name, ", ".join(unknown)), file=sys.stderr)
            return 2
        names = [n for n in names if n in args.test]

    log_dir = args.log_dir or os.path.join("/tmp", "paho-runner-%d" % os.getpid())
    os.makedirs(log_dir, exist_ok=True)
    proxy = TraceProxy(args.host, args.port) if args.trace else None
    passed = 0
    for name in names:
        log_path = os.path.join(log_dir, "%s.%s.log" % (module_name, name))
        if proxy:
            proxy.trace_to(os.path.join(log_dir, "%s.%s.trace" % (module_name, name)))
        host, port = ("127.0.0.1", proxy.port) if proxy else (args.host, args.port)
        verdict, seconds = run_one(args, name, log_path, host, port)
        passed += verdict == "PASS"
        print("%-7s %s.%s (%.1f s)" % (verdict, module_name, name, seconds), flush=True)
        if verdict != "PASS" and args.show_output:
            with open(log_path, encoding="utf-8", errors="replace") as log:
                for line in log:
                    print("        | " + line.rstrip("\n"))
    print("%s (MQTT %s) against %s:%d: %d of %d passed (output of each test in %s)"
          % (module_name, args.suite, args.host, args.port, passed, len(names), log_dir), flush=True)
    return 0 if passed == len(names) else 1


def main():
    parser = argparse.ArgumentParser(description="Run Paho's interoperability client tests one by one against a broker.")
    parser.add_argument("checkout", help="path of a paho.mqtt.testing checkout (with interoperability/)")
    parser.add_argument("--suite", choices=sorted(SUITES), required=True, help="3.1.1 (client_test.py) or 5.0 (client_test5.py)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--timeout", type=float, default=90, help="seconds one test (with its clean-up) may take")
    parser.add_argument("--test", action="append", help="run only this test (repeatable)")
    parser.add_argument("--log-dir", help="where each test's output is written (default: a new dir under /tmp)")
    parser.add_argument("--show-output", action="store_true", help="print the output of every test that did not pass")
    parser.add_argument("--trace", action="store_true", help="relay through a proxy that writes each test's MQTT packets to <test>.trace in the log dir")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
