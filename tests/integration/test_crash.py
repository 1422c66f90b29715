"""Crash test (CONTRACT.md, Durability): concurrent writers, kill -9 at a random moment,
restart on the same data dir, and check that every acknowledged case and event is there,
nothing is there twice, and what was not acknowledged is either whole or absent.

The seed is printed; rerun one with VOCD_CRASH_SEED=N. VOCD_CRASH_ROUNDS (default 3) and
VOCD_CRASH_WRITERS (default 8) change the size."""

import collections
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vocd_harness import Vocd  # noqa: E402

ROUNDS = int(os.environ.get("VOCD_CRASH_ROUNDS", "3"))
WRITERS = int(os.environ.get("VOCD_CRASH_WRITERS", "8"))


class Writer(threading.Thread):
    """One client: creates cases (unique external_id) and appends notes (unique text) to its
    own acknowledged cases. Records every attempt and every acknowledgement."""

    def __init__(self, vocd, index, round_no, seed, ledger, stop):
        super().__init__(name="writer-%d" % index, daemon=True)
        self.v = vocd
        self.i = index
        self.round = round_no
        self.rng = random.Random(seed * 1000003 + round_no * 101 + index)
        self.ledger = ledger
        self.stop = stop

    def create(self, ext):
        rec = self.ledger["creates"][ext]
        st, _, body = self.v.request("POST", "/api/v1/cases",
                                     {"external_id": ext, "channel": "crash", "subject": ext,
                                      "text": rec["text"]}, timeout=15)
        if st in (200, 201):
            if rec["id"] is not None and rec["id"] != body["id"]:
                self.ledger["errors"].append("%s acknowledged as %s, now %s"
                                             % (ext, rec["id"], body["id"]))
            rec["id"] = body["id"]
            rec["acks"].append(st)
        else:
            self.ledger["errors"].append("create %s: %s %r" % (ext, st, body))

    def run(self):
        creates, events = self.ledger["creates"], self.ledger["events"]
        n = len(creates)
        m = len(events)
        # First: the creates a crash left unanswered, again with the same key.
        for ext in [e for e, r in creates.items() if r["id"] is None]:
            if self.stop.is_set():
                return
            try:
                self.create(ext)
            except OSError:
                return
        while not self.stop.is_set():
            own = [r["id"] for r in creates.values() if r["id"] is not None]
            try:
                if not own or self.rng.random() < 0.3:
                    ext = "W%d-C%d" % (self.i, n)
                    n += 1
                    filler = "".join(self.rng.choice("质量服务交付功能abcdefgh ")
                                     for _ in range(self.rng.randint(20, 3000)))
                    creates[ext] = {"text": ext + " " + filler, "id": None, "acks": []}
                    self.create(ext)
                else:
                    case_id = self.rng.choice(own)
                    note = "W%d-R%d-E%d %s" % (self.i, self.round, m, "备注" *
                                                self.rng.randint(0, 200))
                    m += 1
                    events[note] = {"case": case_id, "seq": None}
                    st, _, body = self.v.request(
                        "POST", "/api/v1/cases/%d/events" % case_id,
                        {"type": "note", "note": note}, timeout=15)
                    if st == 201:
                        events[note]["seq"] = body["seq"]
                    else:
                        self.ledger["errors"].append("event on %d: %s %r" % (case_id, st, body))
            except OSError:
                # The daemon is gone (or going): this write is simply unacknowledged.
                if self.stop.wait(0.02):
                    return


class TestCrash(unittest.TestCase):
    def test_kill9_keeps_every_acknowledged_write(self):
        seed = int(os.environ.get("VOCD_CRASH_SEED") or (time.time_ns() % 2**31))
        sys.stderr.write("\ncrash test seed=%d (VOCD_CRASH_SEED=%d to repeat)\n" % (seed, seed))
        rng = random.Random(seed)
        ledgers = [{"creates": {}, "events": {}, "errors": []} for _ in range(WRITERS)]
        with Vocd() as v:
            for round_no in range(ROUNDS):
                stop = threading.Event()
                writers = [Writer(v, i, round_no, seed, ledgers[i], stop)
                           for i in range(WRITERS)]
                for w in writers:
                    w.start()
                delay = rng.uniform(1.0, 3.0)
                time.sleep(delay)
                v.kill9()
                stop.set()
                for w in writers:
                    w.join(30)
                    self.assertFalse(w.is_alive(), "a writer hangs")
                v.start()
                ctx = "seed=%d round=%d kill after %.2fs" % (seed, round_no, delay)
                present = self.verify(v, ledgers, ctx)
                acked = sum(1 for l in ledgers for r in l["creates"].values() if r["id"])
                acked_ev = sum(1 for l in ledgers for e in l["events"].values() if e["seq"])
                unanswered = [e for l in ledgers for e, r in l["creates"].items()
                              if r["id"] is None]
                sys.stderr.write("round %d: killed after %.2fs; %d cases, %d events "
                                 "acknowledged so far; %d creates unanswered, %d of them "
                                 "stored\n" % (round_no, delay, acked, acked_ev, len(unanswered),
                                               sum(1 for e in unanswered if e in present)))
                self.assertGreater(acked, WRITERS, "too little load to mean anything")
            # A last pass of retries: every unacknowledged create now gets its answer, and
            # ids of cases that were written without an answer are given back.
            present = self.verify(v, ledgers, "seed=%d final" % seed)
            for ledger in ledgers:
                for ext, rec in ledger["creates"].items():
                    if rec["id"] is None:
                        st, _, body = v.request("POST", "/api/v1/cases",
                                                {"external_id": ext, "channel": "crash",
                                                 "subject": ext, "text": rec["text"]})
                        if ext in present:
                            self.assertEqual((st, body["id"]), (200, present[ext]), ext)
                        else:
                            self.assertEqual(st, 201, (ext, body))

    def verify(self, v, ledgers, ctx):
        """Check the store against what the writers saw; returns external_id -> case id."""
        errors = [e for l in ledgers for e in l["errors"]]
        self.assertEqual(errors, [], "writers got unexpected answers (%s)" % ctx)
        creates = {}
        notes = {}
        for l in ledgers:
            creates.update(l["creates"])
            notes.update(l["events"])
        cases, cursor = [], None
        while True:
            path = "/api/v1/cases?limit=1000" + ("&cursor=" + cursor if cursor else "")
            st, _, body = v.request("GET", path)
            self.assertEqual(st, 200, body)
            cases.extend(body["cases"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        ids = [c["id"] for c in cases]
        self.assertEqual(len(ids), len(set(ids)), "a case is listed twice (%s)" % ctx)
        st, _, status = v.request("GET", "/api/v1/status")
        self.assertEqual(status["cases"], len(cases), ctx)

        present = {}
        seen_notes = collections.Counter()
        for summary in cases:
            cid = summary["id"]
            st, _, case = v.request("GET", "/api/v1/cases/%d" % cid)
            self.assertEqual(st, 200, (ctx, cid, case))
            ext = case["external_id"]
            self.assertIn(ext, creates, "a case nobody created: %r (%s)" % (ext, ctx))
            self.assertNotIn(ext, present, "external_id %s stored twice: cases %s and %s (%s)"
                             % (ext, present.get(ext), cid, ctx))
            present[ext] = cid
            rec = creates[ext]
            if rec["id"] is not None:
                self.assertEqual(cid, rec["id"], "%s has another id (%s)" % (ext, ctx))
            # Whole: the text as sent, the creation events, seqs without gaps.
            self.assertEqual(case["text"], rec["text"], "%s text damaged (%s)" % (ext, ctx))
            self.assertEqual(case["subject"], ext)
            events = case["events"]
            self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)),
                             "%s: event seqs (%s)" % (ext, ctx))
            self.assertEqual([e["type"] for e in events[:2]], ["received", "classified"],
                             "%s: creation events (%s)" % (ext, ctx))
            for e in events[2:]:
                self.assertEqual(e["type"], "note", ctx)
                note = e["note"]
                self.assertIn(note, notes, "%s: an event nobody sent (%s)" % (ext, ctx))
                self.assertEqual(notes[note]["case"], cid, "note on the wrong case (%s)" % ctx)
                seen_notes[note] += 1
                if notes[note]["seq"] is not None:
                    self.assertEqual(e["seq"], notes[note]["seq"], ctx)
        twice = [n for n, c in seen_notes.items() if c > 1]
        self.assertEqual(twice, [], "events stored twice (%s)" % ctx)
        lost_cases = [ext for ext, r in creates.items() if r["id"] is not None
                      and ext not in present]
        self.assertEqual(lost_cases, [], "acknowledged cases lost (%s)" % ctx)
        lost_events = [n for n, e in notes.items() if e["seq"] is not None
                       and not seen_notes[n]]
        self.assertEqual(lost_events, [], "acknowledged events lost (%s)" % ctx)
        return present


if __name__ == "__main__":
    unittest.main(verbosity=2)
