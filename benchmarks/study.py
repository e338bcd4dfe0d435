"""What the focused studies (curves.py, coverage.py, selection.py) share
around their measurements: the flags of where the figures go, and the JSON
document that is either measured now or, with --report-only, read back."""

import json
import os
import sys

import torch

from machine import code_version, machine_info


def add_output_arguments(parser, name, default_json, report_only_help="the section"):
    """--threads, --json, --report-only and --results-md, for the study
    `name` (its section of RESULTS.md)."""
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads (all logical CPUs)")
    parser.add_argument("--json", type=type(default_json), default=default_json)
    parser.add_argument("--report-only", action="store_true",
                        help=f"measure nothing: {report_only_help} from --json")
    parser.add_argument("--results-md", type=type(default_json),
                        help=f"write the section '{name}' of this page")


def measured_document(args, name, argv, measure, **header):
    """The study's document: read from args.json with --report-only; else
    `header`, the command, the code and the machine, then what measure(doc)
    adds to it, written to args.json."""
    if args.report_only:
        return json.loads(args.json.read_text())
    torch.set_num_threads(args.threads)
    doc = {**header, "command": f"python benchmarks/{name}.py " + " ".join(argv or sys.argv[1:]),
           "code": code_version(), "machine": machine_info("cpu", torch.get_num_threads())}
    measure(doc)
    doc["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1))
    return doc
