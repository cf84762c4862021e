#!/usr/bin/env python3
"""Render the labelled evaluation corpus (eval/calls/*.jsonl) to telephone-band WAV files.

usage: scripts/eval-synth.py [--out DIR] [--jobs N] [--force]   render; print DIR on stdout
       scripts/eval-synth.py --check                            validate the corpus only
       scripts/eval-synth.py --stats                            print the per-tactic table (Markdown)

Normally run through scripts/eval-synth.sh, which installs the tools first. Stdlib only.

Every call of eval/calls/{tuning,heldout,bad}.jsonl becomes DIR/<id>.wav: 8 kHz, mono, 16-bit PCM.
DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/blacklist/eval/<key>/, where <key> hashes the corpus
files, this script and the voices found on the machine, so any change renders into a fresh
directory and an unchanged corpus is never rendered twice. Files already in DIR are kept.
DIR/manifest.jsonl gets one line per call (id, label, tactics, split, engine, voice, seconds,
callerNumber, file, ...); "file" is relative to DIR. Bad inputs have the label "inconclusive".

Voices: each call's engine and voice are derived from a hash of its id. Within each split and
label, the calls are ordered by that hash and dealt round-robin to the engines (espeak-ng, flite,
festival), so every engine gets a fair share of scams and of safe calls; the voice, speed,
codec and level within the engine come from further hashes of the id.

Telephone band (sox): mono, band-pass 300-3400 Hz, 8 kHz, mild compression, a little line hiss,
a round trip through GSM 06.10 or G.711 (mu-law/A-law), normalised to a peak of -2..-5 dBFS.
Logs go to stderr.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS_DIR = ROOT / "eval" / "calls"
SPLITS = (("tuning", "tuning.jsonl"), ("heldout", "heldout.jsonl"), ("bad", "bad.jsonl"))

LABELS = ("scam", "safe")
TACTICS = (
    "authority_impersonation",
    "bank_impersonation",
    "company_impersonation",
    "urgency_threat",
    "credential_request",
    "unusual_payment",
    "remote_access",
    "advance_fee",
    "secrecy_isolation",
    "family_emergency",
    "romance_investment",
    "warranty_benefits",
)
BAD_KINDS = ("silence", "tone", "music", "noise", "foreign")
INCONCLUSIVE = "inconclusive"

RATE = 8000
ENGINES = ("espeak-ng", "flite", "festival")
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp")
ESPEAK_VARIANTS = ("", "+m1", "+m3", "+m7", "+f2", "+f3", "+f4")
ESPEAK_SPEEDS = (150, 155, 160, 165, 170, 175)  # words per minute
FLITE_VOICES = ("kal", "slt", "rms", "awb")
FLITE_STRETCH = (0.95, 1.0, 1.05, 1.1)  # >1 is slower
FESTIVAL_STRETCH = (1.0, 1.05, 1.1, 1.15)  # kal_diphone's own default is 1.1
FESTIVAL_PITCH = (-150, 0, 0, 150)  # cents, applied by sox: a little speaker variety
CODECS = ("gsm", "gsm", "mu-law", "mu-law", "a-law")
PEAKS_DB = (-2.0, -2.5, -3.0, -3.0, -3.5, -4.0, -5.0)
NOISE_DB = (-62, -58, -55, -52)  # line hiss, RMS relative to a speech peak of -6 dBFS
SHORT_WORDS = 25  # a call of at most this many words is a short one (a voicemail)
MAX_SECONDS = 100.0

# Chords for the "music" input: (root, third, fifth, octave, tenth), plucked.
CHORDS = (
    ("C3", "E3", "G3", "C4", "E4"),
    ("G2", "B2", "D3", "G3", "B3"),
    ("A2", "E3", "A3", "C4", "E4"),
    ("F2", "C3", "F3", "A3", "C4"),
)


def log(msg: str) -> None:
    print(f"[eval-synth] {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    log(f"warning: {msg}")


class CorpusError(Exception):
    pass


def h(ident: str, salt: str) -> int:
    """A stable 64-bit hash of (salt, id): the source of every per-call choice."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{ident}".encode()).digest()[:8], "big")


def pick(seq, ident: str, salt: str):
    return seq[h(ident, salt) % len(seq)]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or e.stdout or "").strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed ({e.returncode}): {' | '.join(detail)}") from None


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def load_corpus() -> list[dict]:
    """All rows of the three files, each with a "split" key; structural errors raise."""
    rows: list[dict] = []
    seen: set[str] = set()
    errors: list[str] = []
    for split, name in SPLITS:
        path = CALLS_DIR / name
        if not path.is_file():
            raise CorpusError(f"missing {path}")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{name}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{where}: invalid JSON ({e})")
                continue
            ident = row.get("id")
            if not isinstance(ident, str) or not ID_RE.match(ident):
                errors.append(f"{where}: bad id {ident!r}")
                continue
            if ident in seen:
                errors.append(f"{where}: duplicate id {ident}")
            seen.add(ident)
            errors += [f"{where} ({ident}): {e}" for e in (check_bad(row) if split == "bad" else check_call(row))]
            rows.append({**row, "split": split})
    if errors:
        raise CorpusError("\n  ".join(["invalid corpus:"] + errors))
    return rows


def check_call(row: dict) -> list[str]:
    errs = []
    keys = {"id", "label", "tactics", "text", "callerNumber", "language"}
    if set(row) != keys:
        errs.append(f"keys must be exactly {sorted(keys)}")
    label, tactics, text = row.get("label"), row.get("tactics"), row.get("text")
    if label not in LABELS:
        errs.append(f"label must be one of {LABELS}")
    if not isinstance(tactics, list) or any(t not in TACTICS for t in tactics):
        errs.append(f"tactics must be a list drawn from {TACTICS}")
    elif len(set(tactics)) != len(tactics):
        errs.append("duplicate tactic")
    elif label == "scam" and not tactics:
        errs.append("a scam needs at least one tactic")
    elif label == "safe" and tactics:
        errs.append("a safe call has no tactics")
    if not isinstance(text, str) or not text.strip():
        errs.append("empty text")
    elif not text.isascii():
        errs.append("English texts must be ASCII (festival and flite mangle other characters)")
    num = row.get("callerNumber")
    if num is not None and not (isinstance(num, str) and E164.match(num)):
        errs.append("callerNumber must be null or E.164")
    if row.get("language") != "en":
        errs.append('language must be "en" (other languages belong in bad.jsonl)')
    return errs


def check_bad(row: dict) -> list[str]:
    errs = []
    kind, secs, text, voice = row.get("kind"), row.get("seconds"), row.get("text"), row.get("voice")
    if kind not in BAD_KINDS:
        errs.append(f"kind must be one of {BAD_KINDS}")
    if kind == "foreign":
        if not isinstance(text, str) or not text.strip():
            errs.append("a foreign call needs a text")
        if not (isinstance(voice, str) and voice.startswith("espeak-ng:")):
            errs.append('a foreign call needs a voice "espeak-ng:<voice>"')
        if not isinstance(row.get("language"), str):
            errs.append("a foreign call needs a language")
    else:
        if not isinstance(secs, (int, float)) or not 1 <= secs <= 60:
            errs.append("seconds must be a number from 1 to 60")
        if text is not None or voice is not None:
            errs.append("text and voice must be null for non-speech input")
    return errs


def distribution_problems(rows: list[dict]) -> list[str]:
    """The corpus rules of eval/README.md that are about the whole corpus."""
    probs = []
    calls = [r for r in rows if r["split"] != "bad"]
    held = [r for r in calls if r["split"] == "heldout"]
    if len(calls) < 90:
        probs.append(f"{len(calls)} calls; need at least 90")
    if len(held) < 24:
        probs.append(f"{len(held)} held-out calls; need at least 24")
    if calls and not 0.22 <= len(held) / len(calls) <= 0.28:
        probs.append(f"held-out share is {len(held) / len(calls):.0%}; should be about a quarter")
    for split in ("tuning", "heldout"):
        part = [r for r in calls if r["split"] == split]
        scams = sum(r["label"] == "scam" for r in part)
        if scams * 2 != len(part):
            probs.append(f"{split}: {scams} scams of {len(part)}; must be half")
        present = {t for r in part for t in r["tactics"]}
        for t in TACTICS:
            if t not in present:
                probs.append(f"{split}: no call has tactic {t}")
    kinds = {r["kind"] for r in rows if r["split"] == "bad"}
    for k in BAD_KINDS:
        if k not in kinds:
            probs.append(f"bad: no input of kind {k}")
    return probs


def stats_table(rows: list[dict]) -> str:
    calls = [r for r in rows if r["split"] != "bad"]

    def count(split, pred):
        return sum(1 for r in calls if r["split"] == split and pred(r))

    out = ["| | tuning | held-out | total |", "|---|---:|---:|---:|"]

    def line(name, pred):
        a, b = count("tuning", pred), count("heldout", pred)
        out.append(f"| {name} | {a} | {b} | {a + b} |")

    line("calls", lambda r: True)
    line("scam", lambda r: r["label"] == "scam")
    line("safe", lambda r: r["label"] == "safe")
    line("short (at most 25 words)", lambda r: len(r["text"].split()) <= SHORT_WORDS)
    line("long (over 160 words)", lambda r: len(r["text"].split()) > 160)
    line("with callerNumber", lambda r: r["callerNumber"] is not None)
    for t in TACTICS:
        line(f"`{t}`", lambda r, t=t: t in r["tactics"])
    bad = [r for r in rows if r["split"] == "bad"]
    out.append("")
    out.append(f"Bad inputs (expected `inconclusive`): {len(bad)}: "
               + ", ".join(f"{k} {sum(r['kind'] == k for r in bad)}" for k in BAD_KINDS) + ".")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Engines and voices
# ---------------------------------------------------------------------------------------------


def probe_engines(tmp: Path) -> dict[str, list[str]]:
    """The engines (and, for flite, the voices) that synthesise a test sentence here."""
    found: dict[str, list[str]] = {}
    txt = tmp / "probe.txt"
    txt.write_text("Testing one two three.\n")
    wav = tmp / "probe.wav"

    def ok(cmd: list[str]) -> bool:
        try:
            wav.unlink(missing_ok=True)
            run(cmd, timeout=60)
            return wav.is_file() and wav.stat().st_size > 1000
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            warn(f"{cmd[0]}: {e}")
            return False

    if shutil.which("espeak-ng"):
        voices = [v for v in ESPEAK_VOICES if ok(["espeak-ng", "-v", v, "-f", str(txt), "-w", str(wav)])]
        if voices:
            found["espeak-ng"] = voices
    else:
        warn("espeak-ng not found")
    if shutil.which("flite"):
        try:
            listed = run(["flite", "-lv"]).stdout.split(":", 1)[-1].split()
        except RuntimeError as e:
            warn(str(e))
            listed = []
        voices = [v for v in FLITE_VOICES if v in listed and ok(["flite", "-voice", v, "-f", str(txt), "-o", str(wav)])]
        if voices:
            found["flite"] = voices
    else:
        warn("flite not found")
    if shutil.which("text2wave"):
        if ok(["text2wave", str(txt), "-o", str(wav)]):
            found["festival"] = ["kal_diphone"]
    else:
        warn("text2wave (festival) not found")
    for e in ENGINES:
        if e not in found:
            warn(f"engine {e} is unavailable; its share goes to the others")
    if not found:
        raise SystemExit("[eval-synth] error: no speech engine works (run scripts/eval-synth.sh to install them)")
    return found


def gsm_works(tmp: Path) -> bool:
    try:
        run(["sox", "-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(tmp / "g.wav"), "synth", "0.2", "sine", "440"])
        run(["sox", "-R", str(tmp / "g.wav"), "-t", "gsm", str(tmp / "g.gsm")])
        run(["sox", "-R", "-t", "gsm", str(tmp / "g.gsm"), "-b", "16", str(tmp / "g2.wav")])
        return True
    except RuntimeError as e:
        warn(f"sox can't encode GSM ({e}); using G.711 only")
        return False


def assign(rows: list[dict], engines: dict[str, list[str]], gsm: bool) -> None:
    """Add a "render" dict to every row: engine, voice parameters, codec, levels."""
    order = [e for e in ENGINES if e in engines]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["split"] != "bad":
            groups.setdefault((r["split"], r["label"]), []).append(r)
    for key, group in groups.items():
        group.sort(key=lambda r: h(r["id"], "engine"))
        offset = h("/".join(key), "offset")
        for i, r in enumerate(group):
            r["engine"] = order[(i + offset) % len(order)]
    codecs = CODECS if gsm else tuple(c for c in CODECS if c != "gsm")
    for r in rows:
        ident = r["id"]
        p = {
            "codec": pick(codecs, ident, "codec"),
            "peak": pick(PEAKS_DB, ident, "peak"),
            "noise": pick(NOISE_DB, ident, "noise"),
            "lead": 0.2 + (h(ident, "lead") % 7) / 10,
            "trail": 0.3 + (h(ident, "trail") % 7) / 10,
            "pitch": 0,
        }
        if r["split"] == "bad":
            if r["kind"] == "foreign":
                r["engine"] = "espeak-ng"
                p["voice"] = r["voice"].split(":", 1)[1]
                p["speed"] = pick(ESPEAK_SPEEDS, ident, "speed")
                r["voice_label"] = f"{p['voice']}@{p['speed']}wpm"
            else:
                r["engine"] = "sox"
                r["voice_label"] = None
                p["lead"] = p["trail"] = 0.0
            r["render"] = p
            continue
        engine = r["engine"]
        if engine == "espeak-ng":
            p["voice"] = pick(engines[engine], ident, "voice") + pick(ESPEAK_VARIANTS, ident, "variant")
            p["speed"] = pick(ESPEAK_SPEEDS, ident, "speed")
            r["voice_label"] = f"{p['voice']}@{p['speed']}wpm"
        elif engine == "flite":
            p["voice"] = pick(engines[engine], ident, "voice")
            p["stretch"] = pick(FLITE_STRETCH, ident, "stretch")
            r["voice_label"] = f"{p['voice']}@x{p['stretch']:.2f}"
        else:
            p["voice"] = "kal_diphone"
            p["stretch"] = pick(FESTIVAL_STRETCH, ident, "stretch")
            p["pitch"] = pick(FESTIVAL_PITCH, ident, "pitch")
            r["voice_label"] = f"kal_diphone@x{p['stretch']:.2f}" + (f",pitch{p['pitch']:+d}c" if p["pitch"] else "")
        r["render"] = p


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def soxi_seconds(path: Path) -> float:
    return float(run(["soxi", "-D", str(path)]).stdout.strip())


def sox_stat(path: Path) -> dict[str, float]:
    """`sox FILE -n stat`: RMS and maximum amplitude (0..1)."""
    err = run(["sox", str(path), "-n", "stat"]).stderr
    out = {}
    for key, name in (("RMS     amplitude", "rms"), ("Maximum amplitude", "max")):
        m = re.search(re.escape(key) + r":\s*([-0-9.e+]+)", err)
        if m:
            out[name] = float(m.group(1))
    return out


def synth_speech(r: dict, text: str, td: Path) -> Path:
    p, engine = r["render"], r["engine"]
    txt = td / "text.txt"
    txt.write_text(text + "\n", encoding="utf-8")
    raw = td / "raw.wav"
    if engine == "espeak-ng":
        run(["espeak-ng", "-b", "1", "-v", p["voice"], "-s", str(p["speed"]), "-f", str(txt), "-w", str(raw)])
    elif engine == "flite":
        run(["flite", "-voice", p["voice"], "-f", str(txt), "-o", str(raw), "--setf", f"duration_stretch={p['stretch']}"])
    elif engine == "festival":
        run(["text2wave", "-eval", f"(Parameter.set 'Duration_Stretch {p['stretch']})", str(txt), "-o", str(raw)])
    else:
        raise RuntimeError(f"unknown engine {engine}")
    return raw


def synth_signal(r: dict, td: Path) -> Path:
    """The non-speech inputs of bad.jsonl, before the telephone chain."""
    kind, secs = r["kind"], float(r["seconds"])
    raw = td / "raw.wav"
    base = ["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16"]
    if kind == "silence":
        run(base + [str(raw), "trim", "0", f"{secs}"])
    elif kind == "tone":
        run(base + [str(raw), "synth", f"{secs}", "sine", "1000", "vol", "0.5"])
    elif kind == "noise":
        run(base + [str(raw), "synth", f"{secs}", "whitenoise", "vol", "0.03"])
    elif kind == "music":
        step = 2.0
        parts = []
        for i in range(int(round(secs / step))):
            notes = CHORDS[i % len(CHORDS)]
            part = td / f"chord{i:02d}.wav"
            cmd = ["sox", "-R", "-n", "-r", "16000", "-b", "16", str(part), "synth", f"{step}"]
            for note in notes:
                cmd += ["pluck", note]
            cmd += ["delay"] + [f"{0.04 * k:.2f}" for k in range(len(notes))]
            cmd += ["remix", "-", "fade", "0", f"{step}", "0.15", "norm", "-3"]
            run(cmd)
            parts.append(str(part))
        run(["sox", *parts, str(raw)])
    else:
        raise RuntimeError(f"unknown kind {kind}")
    return raw


def telephone(src: Path, dst: Path, r: dict, td: Path) -> None:
    """The phone line: band-pass, 8 kHz, compression, hiss, a codec round trip, level."""
    p = r["render"]
    kind = r.get("kind")
    quiet = kind in ("silence", "noise")  # keep their (low) level: no compression, no normalising
    a = td / "a.wav"
    cmd = ["sox", "-R", str(src), "-r", str(RATE), "-c", "1", "-b", "16", str(a), "remix", "-"]
    if p["pitch"]:
        cmd += ["pitch", str(p["pitch"])]
    cmd += ["sinc", "300-3400", "rate", "-v", str(RATE)]
    if not quiet:
        # ~1.5:1 above -40 dB with a soft knee, then a common level before the hiss goes in
        cmd += ["compand", "0.01,0.20", "6:-70,-70,-40,-40,0,-13", "0", "-90", "0.01", "norm", "-6"]
    if p["lead"] or p["trail"]:
        cmd += ["pad", f"{p['lead']:.1f}", f"{p['trail']:.1f}"]
    run(cmd)

    secs = soxi_seconds(a)
    noise_db = -72 if kind == "silence" else p["noise"]
    vol = 10 ** ((noise_db + 5.9) / 20)  # full-scale white noise, band-passed, is about -5.9 dBFS RMS
    n = td / "n.wav"
    run(["sox", "-R", "-n", "-r", str(RATE), "-c", "1", "-b", "16", str(n), "synth", f"{secs:.4f}", "whitenoise",
         "vol", f"{vol:.6f}", "sinc", "300-3400"])
    b = td / "b.wav"
    run(["sox", "-R", "-m", "-v", "1", str(a), "-v", "1", str(n), str(b)])

    d = td / "d.wav"
    if p["codec"] == "gsm":
        c = td / "c.gsm"
        run(["sox", "-R", str(b), "-t", "gsm", str(c)])
        run(["sox", "-R", "-t", "gsm", str(c), "-e", "signed-integer", "-b", "16", str(d)])
    else:
        c = td / "c.wav"
        run(["sox", "-R", str(b), "-t", "wav", "-e", p["codec"], "-b", "8", str(c)])
        run(["sox", "-R", str(c), "-e", "signed-integer", "-b", "16", str(d)])

    out = ["sox", "-R", str(d), "-t", "wav", "-r", str(RATE), "-c", "1", "-e", "signed-integer", "-b", "16", str(dst)]
    if not quiet:
        out += ["gain", "-n", f"{p['peak']}"]
    run(out)


def render_one(r: dict, out_dir: Path, force: bool) -> str:
    final = out_dir / f"{r['id']}.wav"
    if final.is_file() and not force:
        try:
            if soxi_seconds(final) > 0:
                return "kept"
        except (RuntimeError, ValueError):
            pass
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".tmp-{r['id']}-") as tmp:
        td = Path(tmp)
        if r["split"] == "bad" and r["kind"] != "foreign":
            raw = synth_signal(r, td)
        else:
            raw = synth_speech(r, r["text"], td)
        done = td / "out.wav"
        telephone(raw, done, r, td)
        os.replace(done, final)
    return "rendered"


def manifest_row(r: dict, secs: float) -> dict:
    bad = r["split"] == "bad"
    row = {
        "id": r["id"],
        "label": INCONCLUSIVE if bad else r["label"],
        "tactics": [] if bad else r["tactics"],
        "split": r["split"],
        "engine": r["engine"],
        "voice": r["voice_label"],
        "seconds": round(secs, 2),
        "callerNumber": None if bad else r["callerNumber"],
        "file": f"{r['id']}.wav",
        "language": r.get("language") if not bad or r["kind"] == "foreign" else None,
        "codec": r["render"]["codec"],
        "peakDb": None if bad and r["kind"] in ("silence", "noise") else r["render"]["peak"],
    }
    if bad:
        row["kind"] = r["kind"]
    return row


def audio_problems(r: dict, secs: float, st: dict[str, float]) -> list[str]:
    rms = st.get("rms", 0.0)
    kind = r.get("kind")
    probs = []
    if kind == "silence":
        if rms > 0.002:
            probs.append(f"silence is too loud (RMS {rms:.4f})")
    elif kind == "noise":
        if not 0.002 < rms < 0.1:
            probs.append(f"noise RMS {rms:.4f} is outside 0.002-0.1")
    elif rms < 0.01:
        probs.append(f"nearly silent (RMS {rms:.4f})")
    if kind not in (None, "foreign") and abs(secs - float(r["seconds"])) > 0.6:
        probs.append(f"{secs:.1f} s, expected {r['seconds']} s")
    if kind is None:
        words = len(r["text"].split())
        if words <= SHORT_WORDS and secs >= 12:
            probs.append(f"a short call ({words} words) lasts {secs:.1f} s")
        if words > 40 and secs < 12:
            probs.append(f"{words} words last only {secs:.1f} s")
        if secs > MAX_SECONDS:
            probs.append(f"{secs:.1f} s is too long")
    return probs


def corpus_key(engines: dict[str, list[str]], gsm: bool) -> str:
    d = hashlib.sha256()
    d.update(Path(__file__).resolve().read_bytes())
    for _, name in SPLITS:
        d.update(name.encode() + b"\0" + (CALLS_DIR / name).read_bytes() + b"\0")
    d.update(json.dumps({"engines": engines, "gsm": gsm}, sort_keys=True).encode())
    return d.hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="output directory (default: the cache, keyed by content)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel renders (default: CPUs)")
    ap.add_argument("--force", action="store_true", help="render again even if a file exists")
    ap.add_argument("--check", action="store_true", help="validate the corpus and exit")
    ap.add_argument("--stats", action="store_true", help="print the per-tactic table (Markdown) and exit")
    args = ap.parse_args()

    try:
        rows = load_corpus()
    except CorpusError as e:
        print(f"[eval-synth] error: {e}", file=sys.stderr)
        return 2
    probs = distribution_problems(rows)
    if args.stats:
        print(stats_table(rows))
        return 0
    if args.check:
        for p in probs:
            print(f"[eval-synth] error: {p}", file=sys.stderr)
        if not probs:
            log(f"corpus ok: {len(rows)} entries")
        return 1 if probs else 0
    for p in probs:
        warn(p)

    for tool in ("sox", "soxi"):
        if not shutil.which(tool):
            print(f"[eval-synth] error: {tool} not found (run scripts/eval-synth.sh)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="eval-synth-probe-") as tmp:
        engines = probe_engines(Path(tmp))
        gsm = gsm_works(Path(tmp))
    assign(rows, engines, gsm)

    if args.out:
        out_dir = args.out.resolve()
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        out_dir = cache / "blacklist" / "eval" / corpus_key(engines, gsm)
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"rendering {len(rows)} inputs into {out_dir} ({args.jobs} at a time; engines: "
        + ", ".join(f"{e} [{' '.join(v)}]" for e, v in engines.items()) + ")")

    t0 = time.monotonic()
    failed: list[str] = []
    counts = {"rendered": 0, "kept": 0}
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(render_one, r, out_dir, args.force): r for r in rows}
        for fut in cf.as_completed(futures):
            r = futures[fut]
            try:
                counts[fut.result()] += 1
            except Exception as e:  # noqa: BLE001 - report every failure, then stop
                failed.append(r["id"])
                warn(f"{r['id']} ({r['engine']} {r.get('voice_label')}): {e}")
    if failed:
        print(f"[eval-synth] error: {len(failed)} input(s) failed: {' '.join(sorted(failed))}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - t0

    manifest, problems, total = [], [], 0.0
    for r in rows:
        path = out_dir / f"{r['id']}.wav"
        secs = soxi_seconds(path)
        total += secs
        problems += [f"{r['id']}: {p}" for p in audio_problems(r, secs, sox_stat(path))]
        manifest.append(manifest_row(r, secs))
    tmp_manifest = out_dir / ".manifest.jsonl.tmp"
    with open(tmp_manifest, "w", encoding="utf-8") as f:
        for m in manifest:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    os.replace(tmp_manifest, out_dir / "manifest.jsonl")

    log(f"{counts['rendered']} rendered, {counts['kept']} already there, in {elapsed:.1f} s; "
        f"{total / 60:.1f} min of audio")
    speech = [m for m in manifest if m["split"] != "bad"]
    if speech:
        secs = sorted(m["seconds"] for m in speech)
        log(f"calls: {len(speech)}, {secs[0]:.1f}-{secs[-1]:.1f} s, median {secs[len(secs) // 2]:.1f} s")
    for e in sorted({m["engine"] for m in speech}):
        mine = [m for m in speech if m["engine"] == e]
        log(f"  {e}: {sum(m['label'] == 'scam' for m in mine)} scam, {sum(m['label'] == 'safe' for m in mine)} safe, "
            f"voices {', '.join(sorted({m['voice'].split('@')[0] for m in mine}))}")
    for p in problems:
        warn(p)
    print(out_dir)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
