"""``edgeport predict``: an audio artifact on recordings -> detection tables (CSV, Raven); a geo artifact on
locations -> species lists (JSON, CSV); audio detections filtered by a geo model's species at a place;
``--model-dir DIR IMAGE...``: a species + disease deliverables folder on images (species, routed disease, OOD)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edgeport.cli.args import SIGMOID_CHOICES, add_scoring_arguments

HELP = ("run an audio artifact on recordings (per-detection CSV, Raven selection tables), a geo artifact on "
        "locations (species above a threshold), or --model-dir DIR IMAGE... (species + disease images)")

log = logging.getLogger(__name__)

SUMMARY_JSON = "edgeport_predict.json"
SHOW_LINES = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgeport.prediction.audio import DEFAULT_MIN_CONF
    from edgeport.prediction.geo import DEFAULT_THRESHOLD
    from edgeport.prediction.tables import RTYPES

    m = p.add_argument_group("model")
    m.add_argument("paths", nargs="*", metavar="ARTIFACT | IMAGE",
                   help="an audio classifier (.keras, .tflite, .onnx, SavedModel folder) with its model config, "
                        "or a geo model (.onnx, .tflite, SavedModel) with labels.txt beside it; with --model-dir: "
                        "image files or folders (JPEG, PNG)")
    m.add_argument("--model-config", "--model_config", dest="model_config", default=None,
                   help="X_model_config.json of an audio artifact (default: found as edgeport evaluate finds it)")
    add_scoring_arguments(m)
    m.add_argument("--batch-size", type=int, default=64, help="chunks per inference call")
    a = p.add_argument_group("audio")
    a.add_argument("--input", "-i", default=None, help="a recording or a folder of recordings (searched recursively)")
    a.add_argument("--outdir", "-o", default="predictions", help="folder for the tables")
    a.add_argument("--rtype", choices=RTYPES, default="csv",
                   help="per-recording tables: csv, raven (Raven Pro selection tables) or both; the combined "
                        "CSV is always written")
    a.add_argument("--overlap", type=float, default=0.0,
                   help="seconds shared by consecutive chunks (below the model's chunk duration)")
    a.add_argument("--min-conf", type=float, default=DEFAULT_MIN_CONF, help="lowest confidence reported")
    a.add_argument("--top-k", type=int, default=None,
                   help="at most this many species per chunk (default: all; images: 3 species and diseases)")
    a.add_argument("--max-duration", type=float, default=None, help="seconds read per file (default: all)")
    a.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    g = p.add_argument_group("place (a geo ARTIFACT, or --geo-model with --input)")
    g.add_argument("--lat", type=float, default=None, help="latitude, -90..90")
    g.add_argument("--lon", type=float, default=None, help="longitude, -180..180")
    g.add_argument("--week", type=float, default=None, help="week of the year, 1..48 (4 a month)")
    g.add_argument("--points", default=None, help="CSV of lat,lon,week rows (geo ARTIFACT only)")
    g.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="geo ARTIFACT: lowest probability listed")
    g.add_argument("--format", choices=("json", "csv"), default="json", help="geo ARTIFACT: file format")
    g.add_argument("--labels", default=None, help="the geo model's labels.txt (default: beside the geo model)")
    g.add_argument("--geo-model", default=None, help="with --input: a geo artifact whose species at --lat/--lon/"
                   "--week filter the detections")
    g.add_argument("--geo-threshold", type=float, default=DEFAULT_THRESHOLD,
                   help="with --geo-model: a species is kept where the geo model gives it at least this")
    im = p.add_argument_group("images (species + disease deliverables folder)")
    im.add_argument("--model-dir", type=Path, default=None, help="a folder written by export --family hierarchy")
    im.add_argument("--precision", default=None, choices=["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_static"],
                    help="which artifacts to run (default: INT8 dynamic when present, else FP32)")
    im.add_argument("--heads", choices=["fused", "per-file"], default="fused",
                    help="fused head model or per-head files")
    im.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _place(args) -> tuple[float, float, float] | None:
    from edgeport.errors import ConfigError

    given = [v is not None for v in (args.lat, args.lon, args.week)]
    if not any(given):
        return None
    if not all(given):
        raise ConfigError("--lat, --lon and --week go together: give all three")
    return float(args.lat), float(args.lon), float(args.week)


def run(args: argparse.Namespace) -> int:
    from edgeport.errors import ConfigError

    if args.model_dir is not None:
        from edgeport.families.hierarchy.cli import run_predict

        args.images, args.top_k = args.paths, args.top_k or 3
        return run_predict(args)
    if len(args.paths) != 1:
        raise ConfigError(f"give one ARTIFACT (got {len(args.paths)}: {' '.join(args.paths) or 'none'}); images "
                          "go with --model-dir DIR")
    args.artifact = args.paths[0]
    place = _place(args)
    if args.input is not None:
        if args.points is not None:
            raise ConfigError("--points lists places for a geo ARTIFACT; with --input give --lat/--lon/--week "
                              "and --geo-model")
        if place is not None and args.geo_model is None:
            raise ConfigError("--lat/--lon/--week with --input filter detections by a geo model: add --geo-model "
                              "GEO_ARTIFACT")
        if args.geo_model is not None and place is None:
            raise ConfigError("--geo-model needs the place: add --lat, --lon and --week")
        return _audio(args, place)
    if args.geo_model is not None:
        raise ConfigError("--geo-model filters audio detections: add --input FILE_OR_FOLDER")
    if args.points is not None and place is not None:
        raise ConfigError("give either --points FILE or --lat/--lon/--week, not both")
    if args.points is None and place is None:
        raise ConfigError("nothing to predict on: give --input FILE_OR_FOLDER (audio model) or --lat/--lon/--week "
                          "or --points FILE.csv (geo model)")
    return _geo(args, place)


def _audio(args, place) -> int:
    from pathlib import Path

    from tqdm.auto import tqdm

    from edgeport.fileio import atomic_write_json
    from edgeport.prediction.audio import AudioPredictor, location_filter
    from edgeport.prediction.tables import COMBINED_CSV, write_csv, write_file_tables

    predictor = AudioPredictor(
        args.artifact, args.input, model_config=args.model_config, overlap=args.overlap, min_conf=args.min_conf,
        top_k=args.top_k, batch_size=args.batch_size, apply_sigmoid=SIGMOID_CHOICES[args.sigmoid],
        output_name=args.output_name, max_duration=args.max_duration, trust_source=args.trust_source,
        threads=args.threads)
    if place is not None:
        predictor.location = location_filter(args.geo_model, predictor.class_names, *place,
                                             threshold=args.geo_threshold, labels=args.labels, threads=args.threads)
    outdir = Path(args.outdir)
    results, tables = [], 0
    bar = tqdm(predictor.run(), total=len(predictor.files), desc="predict", unit="file", disable=not args.progress)
    for r in bar:
        tables += len(write_file_tables(outdir, r, args.rtype, predictor.cfg.sample_rate))
        results.append(r)
    bar.close()
    if not results:
        from edgeport.errors import DataError

        shown = "; ".join(f"{f}: {why}" for f, why in predictor.skipped[:3])
        raise DataError(f"none of the {len(predictor.files)} audio file(s) could be read ({shown}): check the files")
    outdir.mkdir(parents=True, exist_ok=True)
    dets = [d for r in results for d in r.detections]
    combined = write_csv(outdir / COMBINED_CSV, dets)
    info = predictor.info
    removed = sum(r.removed_by_location for r in results)
    atomic_write_json(outdir / SUMMARY_JSON, {
        "command_line": " ".join(["edgeport", *sys.argv[1:]]), **info,
        "files": {"predicted": len(results), "skipped": info["skipped_files"]},
        "detections": len(dets), "detections_removed_by_location": removed,
        "audio_seconds": sum(r.duration_s for r in results),
        "per_file": [{"file": r.file, "chunks": r.chunks, "failed_chunks": r.failed_chunks,
                      "detections": len(r.detections), "duration_s": r.duration_s} for r in results]})
    print(f"{info['artifact']} ({info['runtime']}) on {len(results)} file(s), {info['chunks']} chunks: "
          f"{len(dets)} detection(s) at min-conf {args.min_conf:g}, sigmoid "
          f"{'applied' if info['apply_sigmoid'] else 'not applied'}")
    loc = predictor.location
    if loc is not None:
        print(f"  location filter ({loc.lat:g}, {loc.lon:g}, week {loc.week:g}; {Path(loc.geo_artifact).name} >= "
              f"{loc.threshold:g}): {removed} detection(s) removed, {len(loc.removed)} class(es) not expected there, "
              f"{len(loc.unmatched)} class(es) without a match in the geo labels kept")
    if predictor.skipped:
        print(f"  skipped {len(predictor.skipped)} unreadable file(s):")
        for f, why in predictor.skipped:
            print(f"    {f}: {why}")
    print(f"wrote {tables} table(s) ({args.rtype}), {combined} and {outdir / SUMMARY_JSON}")
    return 0


def _geo(args, place) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from edgeport.fileio import atomic_write_text
    from edgeport.prediction.geo import predict_geo, read_points
    from edgeport.prediction.tables import geo_csv_text

    points = read_points(args.points) if args.points is not None else np.array([place], np.float32)
    got = predict_geo(args.artifact, points, threshold=args.threshold, labels=args.labels, threads=args.threads)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"edgeport_species.{args.format}"
    if args.format == "json":
        atomic_write_text(path, json.dumps({"artifact": str(args.artifact), "threshold": args.threshold,
                                            "points": got}, indent=2) + "\n")
    else:
        atomic_write_text(path, geo_csv_text(got))
    for p in got[:3]:
        print(f"({p['lat']:g}, {p['lon']:g}, week {p['week']:g}): {len(p['species'])} species at >= {args.threshold:g}")
        for s in p["species"][:SHOW_LINES]:
            print(f"  {s['probability']:.3f}  {s['scientific_name']} ({s['common_name']}) [{s['code']}]")
    if len(got) > 3:
        print(f"... and {len(got) - 3} more point(s)")
    print(f"wrote {path}")
    return 0
