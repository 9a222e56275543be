#!/usr/bin/env python3
"""Turns bench/results.jsonl into the "Latest run" section of bench/RESULTS.md."""
import json, os, platform, subprocess, sys

src, dst = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(src) if l.strip().startswith("{")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

lines = ["## Latest run (bench/run.sh)", "",
         f"Machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; commit {commit}.", ""]

stream = [r for r in rows if r.get("bench") == "chatstream-load" and r.get("mode") != "idle"]
if stream:
    lines += ["### Streaming (`/tokens 2000`, zero token delay)", "",
              "chatstream merges adjacent text-deltas of one message while a socket is backed up "
              "(docs/protocol.md), so it sends fewer, larger frames than the ceiling server, which "
              "sends one frame per token; tokens/s (streams x N / seconds) is the comparable rate.", "",
              "| server | streams | tokens/s | frames/s | inter-frame p50 ms | p99 ms | TTFT p99 ms | failed | server peak RSS MiB |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in stream:
        ie, tt = r.get("inter_event", {}), r.get("ttft", {})
        n = int(r["prompt"].split("/tokens ")[1].split()[0]) if "/tokens " in r["prompt"] else 0
        tokens_per_s = r["streams_completed"] * n / r["seconds"] if r["seconds"] else 0
        lines.append(f"| {r.get('label','')} | {r['connections']*r['streams_per_conn']} | {tokens_per_s:.0f} | {r['events_per_sec']:.0f} | "
                     f"{ie.get('p50_ms',0):.3f} | {ie.get('p99_ms',0):.3f} | {tt.get('p99_ms',0):.2f} | "
                     f"{r['streams_failed']} | {r.get('server_peak_rss_kb',0)/1024:.1f} |")
    lines.append("")
idle = [r for r in rows if r.get("mode") == "idle"]
for r in idle:
    lines += [f"Idle connections: {r['connected']}/{r['connections']} connected, server RSS "
              f"{r.get('server_rss_kb',0)/1024:.1f} MiB, {r.get('rss_per_connection_kb',0):.1f} KiB per idle connection.", ""]
writer = [r for r in rows if r.get("bench") == "writer" and "rows" in r]  # not the PostgreSQL round_trip probe
if writer:
    lines += ["### Writer", "", "| mode | rows | upserts/s | rows/commit |", "|---|---:|---:|---:|"]
    for r in writer:
        lines.append(f"| {r['mode']} | {r['rows']} | {r['upserts_per_sec']:.0f} | {r.get('rows_per_commit','')} |")
    lines.append("")
mig = [r for r in rows if r.get("bench", "").startswith("migration")]
if mig:
    lines += ["### Migration", "", "```"] + [json.dumps(r) for r in mig] + ["```", ""]

section = "\n".join(lines)
text = open(dst).read() if os.path.exists(dst) else "# Benchmark results\n"
marker = "## Latest run (bench/run.sh)"
if marker in text:
    head, _, rest = text.partition(marker)
    nxt = rest.find("\n## ")
    text = head + section + (rest[nxt + 1:] if nxt >= 0 else "")
else:
    text = text.rstrip() + "\n\n" + section
open(dst, "w").write(text)
