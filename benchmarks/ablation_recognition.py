"""Recognition ablation: two textbook ways to recognise degraded faces, measured.

    python -m benchmarks.ablation_recognition [--levels none,light,medium] [--seeds 3] [--no-write]

The default pipeline misses the anchor at the medium CCTV level because
genuine and impostor distances overlap there (``bench_recognition``).  This
script measures whether either of these separates them better:

* **flip averaging** -- embed the aligned chip and its mirror image, average,
  re-normalise (a test-time augmentation common in face verification);
* **degraded gallery templates** -- enrol, next to each clean photo, three
  copies degraded at the probe's level (other seeds than the probes'), and
  match against the nearest template of each person.

Same data and leave-one-out protocol as ``bench_recognition`` (25 labelled
photos as enrolled and as non-enrolled probes, 3 extra non-enrolled people).
The decision rule here is the bare distance rule (nearest person within the
limit and 0.03 ahead of the next), without the quality gate, so the
"recognised" numbers are a little higher than the product's.  "Best limit"
is the largest limit with zero false matches, chosen on this very data: an
optimistic upper bound, not a calibrated threshold.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from benchmarks._report import machine, require_shared, write_section
from benchmarks.bench_recognition import identities, labelled_pairs
from pipeline.io import load_image
from pipeline.recognition.embedders import get_embedder
from pipeline.recognition.evaluate import degrade, normalise_face_size
from pipeline.stages.detect import detect_faces

MARGIN = 0.03
DEFAULT_MATCH_LIMIT = 0.36  # threshold 0.40 minus the inconclusive band 0.04
LIMITS = np.round(np.arange(0.30, 0.5001, 0.005), 3)


def _chip(rgb: np.ndarray, embedder) -> np.ndarray | None:
    faces = detect_faces(rgb)
    if not faces:
        return None
    return embedder.align(rgb, [max(faces, key=lambda f: f.width)])[0].chip


def _embed(chips: list[np.ndarray], embedder, flip: bool) -> np.ndarray:
    vectors = embedder.embed_chips(chips)
    if flip:
        vectors = vectors + embedder.embed_chips([c[:, ::-1].copy() for c in chips])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def _nearest_people(vector: np.ndarray, templates: dict[str, list[np.ndarray]], labels: dict[str, str],
                    skip: Callable[[str], bool]) -> list[tuple[str, float]]:
    best: dict[str, float] = {}
    for photo, vectors in templates.items():
        if skip(photo):
            continue
        d = min(float(np.linalg.norm(vector - t)) for t in vectors)
        best[labels[photo]] = min(best.get(labels[photo], 9.0), d)
    return sorted(best.items(), key=lambda kv: kv[1])


def evaluate(probes, strangers, labels, embedder, level: str, seeds: int, flip: bool, degraded_templates: bool) -> dict:
    templates = {}
    for photo, rgb in probes.items():
        chips = [_chip(rgb, embedder)]
        if degraded_templates and level != "none":
            chips += [_chip(degrade(rgb, level, seed=100 + s), embedder) for s in range(3)]
        templates[photo] = list(_embed([c for c in chips if c is not None], embedder, flip))
    n_seeds = 1 if level == "none" else seeds
    genuine, impostor = [], []  # (distance, margin, right person) / (distance, margin)
    for photo, rgb in probes.items():
        for seed in range(n_seeds):
            chip = _chip(degrade(rgb, level, seed=seed), embedder)
            if chip is None:
                genuine.append((9.0, 0.0, False))
                continue
            v = _embed([chip], embedder, flip)[0]
            ranked = _nearest_people(v, templates, labels, lambda p: p == photo)
            genuine.append((ranked[0][1], ranked[1][1] - ranked[0][1], ranked[0][0] == labels[photo]))
            ranked = _nearest_people(v, templates, labels, lambda p: labels[p] == labels[photo])
            impostor.append((ranked[0][1], ranked[1][1] - ranked[0][1]))
    for rgb in strangers.values():
        for seed in range(n_seeds):
            chip = _chip(degrade(rgb, level, seed=seed), embedder)
            if chip is not None:
                ranked = _nearest_people(_embed([chip], embedder, flip)[0], templates, labels, lambda p: False)
                impostor.append((ranked[0][1], ranked[1][1] - ranked[0][1]))

    def recognised(limit: float) -> float:
        return sum(d <= limit and m >= MARGIN and ok for d, m, ok in genuine) / len(genuine)

    def false_matches(limit: float) -> int:
        return sum(d <= limit and m >= MARGIN for d, m in impostor)

    safe = [t for t in LIMITS if false_matches(t) == 0]
    best = max(safe) if safe else None
    right = [d for d, _, ok in genuine if ok]
    return {"genuine_median": float(np.median(right)) if right else float("nan"),
            "impostor_min": min(d for d, _ in impostor),
            "recognised_default": recognised(DEFAULT_MATCH_LIMIT), "false_default": false_matches(DEFAULT_MATCH_LIMIT),
            "best_limit": best, "recognised_best": recognised(best) if best is not None else 0.0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="none,light,medium")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    faces_root = require_shared("faces")
    deepface = faces_root / "deepface"
    labels = identities(labelled_pairs(deepface))
    embedder = get_embedder("dlib")

    def normalised(rgb: np.ndarray) -> np.ndarray:
        faces = detect_faces(rgb)
        return normalise_face_size(rgb, max(f.width for f in faces)) if faces else rgb

    probes = {name: normalised(load_image(deepface / name)) for name in sorted(labels)}
    strangers = {p: normalised(load_image(faces_root / "facenet_pytorch" / "test_images" / p / "1.jpg"))
                 for p in ("kate_siegel", "paul_rudd", "shea_whigham")}
    rows = []
    for level in args.levels.split(","):
        for flip in (False, True):
            for degraded in (False, True):
                if degraded and level == "none":
                    continue
                r = evaluate(probes, strangers, labels, embedder, level, args.seeds, flip, degraded)
                name = " + ".join(x for x, on in (("flip averaging", flip), ("degraded templates", degraded)) if on)
                rows.append((level, name or "plain (the product's embedding)", r))
                print(level, name or "plain", {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()},
                      flush=True)
    table = "\n".join(
        f"| {lv} | {name} | {r['genuine_median']:.3f} | {r['impostor_min']:.3f} | {100 * r['recognised_default']:.1f} "
        f"| {r['false_default']} | {r['best_limit'] if r['best_limit'] is not None else '-'} | {100 * r['recognised_best']:.1f} |"
        for lv, name, r in rows)
    md = f"""## Recognition ablation: flip averaging and degraded gallery templates

Script: `benchmarks/ablation_recognition.py`. Command: `python -m benchmarks.ablation_recognition --levels {args.levels} --seeds {args.seeds}`.
Machine: {machine()}. Same photos, degradation levels and leave-one-out protocol as the recognition section; bare distance
rule (nearest person within the limit, {MARGIN} ahead of the next; no quality gate). "Best limit": the largest limit with no
false match of a non-enrolled probe, chosen on this data (an optimistic bound).

| level | variant | genuine median distance | closest impostor | recognised at {DEFAULT_MATCH_LIMIT} (%) | false matches at {DEFAULT_MATCH_LIMIT} | best limit | recognised at best limit (%) |
|---|---|---|---|---|---|---|---|
{table}

Reading: degraded templates pull genuine probes closer but pull impostors closer still (the closest impostor moves
below the genuine median), so they create false matches at any useful limit; flip averaging moves both distributions
by about the same amount (slightly more for impostors). Neither is in the product. The plain embedding's own best
limit rises with degradation (0.365 clean, 0.385 light, 0.395 medium: degraded impostors do not come closer), so a
quality-dependent limit looser for poor faces could reach the anchor's 61.3 % at the medium level -- but only with a
limit read off these same 25 probes; with no independent labelled set to calibrate it on, the product keeps the
fixed 0.36 limit and reports the gap.
"""
    if not args.no_write:
        print("wrote", write_section("recognition-ablation", md))
    else:
        print(md)


if __name__ == "__main__":
    main()
