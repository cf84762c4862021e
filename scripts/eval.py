#!/usr/bin/env python3
"""`make eval`: the labelled call corpus, end to end through the worker's analysis.

Reads the manifest that scripts/eval-synth.sh wrote beside the rendered calls, runs
`worker analyze` over every file in one process (the model is loaded once, as in a running
worker), and prints:

- recall (a scam flagged `scam` or `suspicious`) and false-positive rate (a safe call flagged),
  for the tuning split and, separately, for the held-out split (never used for tuning);
- recall per tactic (of the scams labelled with that tactic, how many were flagged) and how often
  the tactic itself was found;
- the bad-input set (silence, tone, music, noise, foreign speech): all must be `inconclusive`;
- speed: real-time factor (analysis seconds / audio seconds) for short and long calls, model load.

Usage: eval.py WORKER_BINARY CORPUS_DIR [--split tuning|heldout|bad|all] [--details]
       eval.py WORKER_BINARY --text eval/dev/calls.jsonl [--details]
`--text` judges written transcripts (the text development set, eval/dev/) with today's rules, no
audio: how the rules fare on phrasings the audio corpus does not have.
`--details` prints each call's verdict and indicators; it refuses to print held-out calls.
Exit status 1 when the held-out or tuning figures miss the aims (recall >= 95%, FP <= 5%) or
a bad input gets a verdict, so `make eval` fails loudly.
"""

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

FLAGGED = {"scam", "suspicious"}


def run_worker(binary, corpus, entries, from_results=None, save=None):
    files = [str(corpus / e["file"]) for e in entries]
    started = time.monotonic()
    cmd = [binary, "analyze", "--from-results", str(from_results)] if from_results else [binary, "analyze", *files]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "RUST_LOG": "warn", "LOG_FORMAT": "text"},
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"worker analyze failed with exit status {proc.returncode}")
    if save:
        Path(save).write_text(proc.stdout)
    load, analyzer = 0.0, "?"
    for line in proc.stderr.splitlines():
        if line.startswith("analyzer ") and " loaded in " in line:
            load = float(line.rsplit(" loaded in ", 1)[1].split()[0])
            analyzer = line.split()[1]
    out = {}
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        out[Path(d["file"]).name] = d
    return out, load, wall, analyzer


def pct(n, d):
    return f"{100.0 * n / d:5.1f}% ({n}/{d})" if d else "   n/a"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("worker")
    ap.add_argument("corpus", type=Path, nargs="?")
    ap.add_argument("--text", help="a JSON-lines file of written calls (id, label, tactics, text)")
    ap.add_argument("--split", default="all")
    ap.add_argument("--details", action="store_true")
    ap.add_argument("--save", help="keep the worker's output (JSON lines) here")
    ap.add_argument("--from-results", help="judge the transcripts of a saved output again (rules tuning)")
    args = ap.parse_args()

    if args.text:
        return text_eval(args)
    manifest = [json.loads(l) for l in (args.corpus / "manifest.jsonl").read_text().splitlines() if l.strip()]
    if args.split != "all":
        manifest = [e for e in manifest if e["split"] == args.split]
    results, load, wall, analyzer = run_worker(args.worker, args.corpus, manifest, args.from_results, args.save)

    print(f"analyzer: {analyzer}")
    print(f"calls: {len(manifest)}   wall time {wall:.1f} s   model load {load:.2f} s")
    ok = True
    rows = []
    for split in ("tuning", "heldout"):
        calls = [e for e in manifest if e["split"] == split]
        if not calls:
            continue
        scams = [e for e in calls if e["label"] == "scam"]
        safes = [e for e in calls if e["label"] == "safe"]
        verdict = lambda e: results.get(e["file"], {}).get("result", {}).get("verdict", "error")
        tp = sum(verdict(e) in FLAGGED for e in scams)
        fp = sum(verdict(e) in FLAGGED for e in safes)
        as_scam = sum(verdict(e) == "scam" for e in scams)
        inconclusive = sum(verdict(e) == "inconclusive" for e in calls)
        errors = sum(verdict(e) == "error" for e in calls)
        rows.append((split, tp, len(scams), fp, len(safes)))
        print(f"\n== {split}: {len(scams)} scams, {len(safes)} safe calls")
        print(f"  recall (scam or suspicious) {pct(tp, len(scams))}   as 'scam' {pct(as_scam, len(scams))}")
        print(f"  false positives             {pct(fp, len(safes))}")
        print(f"  inconclusive {inconclusive}   errors {errors}")
        if scams and tp / len(scams) < 0.95 or safes and fp / len(safes) > 0.05:
            ok = False
        per = defaultdict(lambda: [0, 0, 0])
        for e in scams:
            found = {i["kind"] for i in results.get(e["file"], {}).get("result", {}).get("indicators", [])}
            for t in e["tactics"]:
                per[t][0] += 1
                per[t][1] += verdict(e) in FLAGGED
                per[t][2] += t in found
        print(f"  {'tactic':26} {'calls':>5} {'flagged':>8} {'tactic found':>13}")
        for t in sorted(per):
            n, f, found = per[t]
            print(f"  {t:26} {n:5} {f:8} {found:13}")
        if args.details:
            if split == "heldout":
                print("  (held-out details are not printed: the split is kept out of tuning)")
                continue
            for e in calls:
                r = results.get(e["file"], {})
                res = r.get("result", {})
                mark = "" if (verdict(e) in FLAGGED) == (e["label"] == "scam") else "  <-- WRONG"
                print(f"  {e['id']:24} {e['label']:5} -> {verdict(e):12} risk {res.get('riskScore', 0):.2f}{mark}")
                if mark:
                    print(f"      tactics {e['tactics']}")
                    for i in res.get("indicators", []):
                        print(f"      + {i['kind']}: {i['evidence'][:90]}")
                    for i in res.get("counterEvidence", []):
                        print(f"      - {i['kind']}: {i['evidence'][:90]}")
                    print(f"      transcript: {(res.get('transcript') or r.get('error') or '')[:600]}")

    bad = [e for e in manifest if e["split"] == "bad"]
    if bad:
        print("\n== bad input (must be inconclusive)")
        for e in bad:
            r = results.get(e["file"], {})
            res = r.get("result", {})
            v = res.get("verdict", "error")
            good = v == "inconclusive"
            ok &= good
            print(f"  {e['id']:18} -> {v:12} {'ok ' if good else 'BAD'} {res.get('explanation') or r.get('error', '')}")

    # Speed: real-time factor by call length.
    short = [(e["seconds"], results[e["file"]]["seconds"]) for e in manifest if e["file"] in results and e["seconds"] <= 15 and e["split"] != "bad"]
    mid = [(e["seconds"], results[e["file"]]["seconds"]) for e in manifest if e["file"] in results and 15 < e["seconds"] < 55 and e["split"] != "bad"]
    long = [(e["seconds"], results[e["file"]]["seconds"]) for e in manifest if e["file"] in results and e["seconds"] >= 55 and e["split"] != "bad"]
    print("\n== speed (analysis time / audio time; target <= 0.3)")
    for name, xs in (("calls <= 15 s", short), ("calls 15-55 s", mid), ("calls >= 55 s", long)):
        if xs:
            audio = sum(a for a, _ in xs)
            took = sum(t for _, t in xs)
            print(f"  {name:14} {len(xs):3} calls, {audio:7.1f} s audio, {took:6.1f} s analysis, RTF {took / audio:.3f}")
    total_audio = sum(e["seconds"] for e in manifest if e["file"] in results)
    total = sum(r["seconds"] for r in results.values())
    print(f"  all            {len(results):3} calls, {total_audio:7.1f} s audio, {total:6.1f} s analysis, RTF {total / max(total_audio, 1e-9):.3f}, {len(results) / max(total, 1e-9):.2f} calls/s with one worker")
    summary = "  ".join(f"{s}: recall {tp}/{n} FP {fp}/{m}" for s, tp, n, fp, m in rows)
    print(f"\nSUMMARY {summary}")
    return 0 if ok else 1


def text_eval(args):
    import os
    import re
    import tempfile
    calls = [json.loads(l) for l in Path(args.text).read_text().splitlines() if l.strip()]
    lines = []
    for c in calls:
        sentences = [x for x in re.split(r"(?<=[.?!])\s+", c["text"].strip()) if x]
        segs, t = [], 0.0
        for x in sentences:
            d = 0.35 * len(x.split())
            segs.append({"start": t, "end": t + d, "text": x})
            t += d
        audio = {"durationSeconds": t, "sampleRate": 8000, "channels": 1, "codec": "text", "peakDbfs": 0, "rmsDbfs": 0, "silenceRatio": 0}
        lines.append(json.dumps({"file": c["id"], "seconds": 0, "result": {"verdict": "safe", "riskScore": 0, "indicators": [], "transcript": c["text"],
            "callerNumber": None, "audio": audio, "analyzer": {"name": "text", "version": "text"}, "language": "en", "segments": segs}}))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    proc = subprocess.run([args.worker, "analyze", "--from-results", path], capture_output=True, text=True,
                          env={**os.environ, "RUST_LOG": "warn"})
    os.unlink(path)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    out = {json.loads(l)["file"]: json.loads(l)["result"] for l in proc.stdout.splitlines()}
    scams = [c for c in calls if c["label"] == "scam"]
    safes = [c for c in calls if c["label"] == "safe"]
    v = lambda c: out[c["id"]]["verdict"]
    tp = sum(v(c) in FLAGGED for c in scams)
    fp = sum(v(c) in FLAGGED for c in safes)
    print(f"text set {args.text}: {len(scams)} scams, {len(safes)} safe")
    print(f"  recall {pct(tp, len(scams))}   false positives {pct(fp, len(safes))}")
    per = defaultdict(lambda: [0, 0, 0])
    for c in scams:
        found = {i["kind"] for i in out[c["id"]]["indicators"]}
        for t in c["tactics"]:
            per[t][0] += 1
            per[t][1] += v(c) in FLAGGED
            per[t][2] += t in found
    for t in sorted(per):
        print(f"  {t:26} {per[t][0]:5} {per[t][1]:8} {per[t][2]:13}")
    if args.details:
        for c in calls:
            r = out[c["id"]]
            wrong = (v(c) in FLAGGED) != (c["label"] == "scam")
            if wrong:
                print(f"\n{c['id']} {c['label']} -> {v(c)} {r['riskScore']} tactics {c['tactics']}")
                for i in r["indicators"]:
                    print(f"   + {i['kind']}: {i['evidence'][:80]}")
                for i in r.get("counterEvidence", []):
                    print(f"   - {i['kind']}: {i['evidence'][:80]}")
                print("   " + c["text"][:700])
    return 0


if __name__ == "__main__":
    sys.exit(main())
