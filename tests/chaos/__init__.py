"""The chaos suite: real process faults against the real stack (issue 12, part 1).

Small modules shared by the fast subset in `make test` (tests/chaos/test_chaos.py) and the full
run of `make chaos` (`python -m tests.chaos`):

- procs: start, kill and restart real processes (Temporal dev server, API, worker, PostgreSQL);
- stack: one stack of them, with the HTTP peers and the SMTP sink, on a short-timer policy;
- load: open cases (keyed) and drive them to their end through the integration events API;
- checks: the figures of a run (refunds per key, copies per Message-ID, ...) and its guarantees;
- scenarios: the faults themselves, each bounded in time and cleaning up after itself.
"""
