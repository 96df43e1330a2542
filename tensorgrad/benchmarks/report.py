"""Tables and files from benchmark rows: the machine, results.md, results.json, results.png."""
import json
import os
import platform
import sys
from importlib import metadata

from tensorgrad.benchmarks.base import ENGINE_LABELS, ENGINES
from tensorgrad.cli._common import atomic_output

__all__ = ["format_time", "machine_info", "markdown", "write_all", "write_json", "write_png"]

SHORT = {"tensorgrad": "tg", "numpy": "numpy", "torch": "torch", "sklearn": "sklearn",
         "scipy": "scipy", "faiss": "faiss"}
COLOURS = {"numpy": "#4c72b0", "torch": "#dd8452", "sklearn": "#55a868", "scipy": "#8172b3",
           "faiss": "#c44e52"}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info():
    """CPU, cores, OS, library versions, OpenMP and BLAS (without importing torch)."""
    import tensorgrad as tg
    from tensorgrad._runtime import cores_available
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "cores_available": cores_available(),
            "os": platform.platform(), "python": sys.version.split()[0],
            "tensorgrad": tg.__version__}
    for name, dist in (("numpy", "numpy"), ("scipy", "scipy"), ("torch", "torch"),
                       ("scikit-learn", "scikit-learn"), ("threadpoolctl", "threadpoolctl")):
        info[name] = _version(dist)
    try:
        from tensorgrad._kernels import runtime
        info["openmp"] = bool(runtime.openmp_enabled())
    except (ImportError, AttributeError):
        info["openmp"] = None
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = sorted({f"{i.get('internal_api')} {i.get('version')}"
                               for i in threadpool_info() if i.get("user_api") == "blas"})
    except ImportError:
        info["blas"] = []
    info["gemm"] = tg._blas.provider()
    return info


def format_time(seconds, per=1, unit="call"):
    """'12.3 ms' (per call) or '4.56 µs/op' when the time is split over ``per`` units."""
    if seconds is None:
        return "—"
    s = seconds / per
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
        if s >= scale or name == "ns":
            v = s / scale
            text = f"{v:.3g}" if v < 1000 else f"{v:.0f}"
            return f"{text} {name}" + (f"/{unit}" if unit != "call" else "")


def _mb(n):
    return "n/a" if n is None else f"{n / 2 ** 20:.1f} MB"


def _engines_in(rows):
    present = {e for r in rows for e in r.measurements}
    return [e for e in ENGINES if e in present] or ["tensorgrad"]


def _time_cell(row, engine):
    m = row.measurements.get(engine)
    if m is None:
        return "—"
    if m.status != "ok":
        return m.status
    best = format_time(m.min, row.per, row.per_unit).split(" ")[0]
    return f"{format_time(m.median, row.per, row.per_unit)} ({best})"


def _ratio_cell(row, engine):
    if row.status == "WRONG":
        return "(WRONG)"
    r = row.ratio(engine)
    return "—" if r is None else f"{r:.2f}×"


def _check_cell(row):
    if row.status == "WRONG":
        return "**WRONG**"
    if row.status in ("skipped", "error"):
        return row.status
    return "ok" if row.checks else "unchecked"


def _table(rows):
    engines = _engines_in(rows)
    others = [e for e in engines if e != "tensorgrad"]
    head = (["workload", "size"] + [ENGINE_LABELS[e] for e in engines]
            + [f"{SHORT[e]} / tg" for e in others] + ["check"])
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---"] + ["---:"] * (len(engines) + len(others))
                            + [":---:"]) + "|"]
    for r in rows:
        cells = ([f"`{r.workload}`", r.size] + [_time_cell(r, e) for e in engines]
                 + [_ratio_cell(r, e) for e in others] + [_check_cell(r)])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _memory_table(rows):
    lines = ["| workload | engine | time | tracemalloc peak | RSS high-water rise |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        for e, m in r.measurements.items():
            if m.status == "ok" and (m.mem_traced is not None or m.mem_rss is not None):
                lines.append(f"| `{r.workload}` | {ENGINE_LABELS[e]} | "
                             f"{format_time(m.median)} | {_mb(m.mem_traced)} | "
                             f"{_mb(m.mem_rss)} |")
    return lines if len(lines) > 2 else []


def _scaling_table(rows, threads):
    base = threads[0]
    by_key = {(r.workload, r.threads): r for r in rows}
    names = list(dict.fromkeys(r.workload for r in rows))
    engines = _engines_in(rows)
    head = ["workload"] + [f"{ENGINE_LABELS[e]} {base}→{n}" for n in threads[1:] for e in engines]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name in names:
        cells = [f"`{name}`"]
        for n in threads[1:]:
            for e in engines:
                a = by_key.get((name, base))
                b = by_key.get((name, n))
                ma = a.measurements.get(e) if a else None
                mb = b.measurements.get(e) if b else None
                ok = ma and mb and ma.status == mb.status == "ok" and mb.median
                cells.append(f"{ma.median / mb.median:.2f}×" if ok else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _machine_lines(info):
    libs = ", ".join(f"{k} {info[k]}" for k in ("numpy", "scipy", "torch", "scikit-learn",
                                                 "threadpoolctl") if info.get(k))
    omp = {True: "on", False: "OFF", None: "unknown"}[info.get("openmp")]
    return [(f"- CPU: {info['cpu']} — {info['cores']} cores ({info['cores_available']} "
             f"available to this process)"),
            f"- OS: {info['os']}; Python {info['python']}",
            f"- tensorgrad {info['tensorgrad']} (OpenMP {omp}); {libs}",
            (f"- BLAS libraries loaded: {', '.join(info['blas']) or 'unknown'}; tensorgrad's "
             f"GEMMs call {info.get('gemm') or 'unknown'}")]


def _throughput_table(rows):
    rows = [r for r in rows if r.flops]
    if not rows:
        return []
    engines = _engines_in(rows)
    lines = ["| workload | GFLOP per call | sgemm peak | "
             + " | ".join(f"{ENGINE_LABELS[e]} GFLOP/s (% of peak)" for e in engines) + " |",
             "|---|---:|---:|" + "---:|" * len(engines)]
    for r in rows:
        cells = [f"`{r.workload}`", f"{r.flops / 1e9:.3g}",
                 f"{r.gemm_peak / 1e9:.1f}" if r.gemm_peak else "—"]
        for e in engines:
            g = r.gflops(e)
            cells.append("—" if g is None else
                         f"{g:.1f} ({100 * g * 1e9 / r.gemm_peak:.0f}%)" if r.gemm_peak
                         else f"{g:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(rows, info, command, settings):
    """The whole results.md text: how to read it, the machine, the command, the tables."""
    threads = settings["threads"]
    out = ["# tensorgrad benchmark results", "",
           f"Command: `{command}`", "", "Machine:", *_machine_lines(info), "",
           (f"Sizes: {'quick' if settings['quick'] else 'full'}. Each time is the median per "
           f"call (minimum in parentheses) over {settings['repeat']} repetitions, after "
           f"{settings['warmup']} warm-up call(s); a repetition averages enough calls to last "
           f"≥ {settings['min_time'] * 1e3:g} ms. The engines take turns: repetition i of "
           f"each runs right after repetition i of the previous one, so a change in the "
           f"machine's load falls on all of them. Every engine runs with the same number of "
           f"threads (tensorgrad's OpenMP pool, BLAS via threadpoolctl, "
           f"`torch.set_num_threads`); inputs are allocated outside the timed region."), "",
           ("**How to read it:** the `x / tg` columns are that engine's time divided by "
           "tensorgrad's (the median of the per-repetition ratios), so **a ratio above 1 "
           "means tensorgrad is faster** (2.00× = twice as fast). `check` compares "
           "tensorgrad's outputs, gradients and updated parameters with every other "
           "engine's results from the same run, to float32 tolerance: "
           "**WRONG** means they disagree, and that row's speed must not be trusted. numpy "
           "columns are the hand-written flat forward+backward of the course assignments.")]
    for n in threads:
        sel = [r for r in rows if r.threads == n]
        out += ["", f"## {n} thread{'s' if n != 1 else ''}", "", *_table(sel)]
        flops = _throughput_table(sel)
        if flops:
            out += ["", (f"Throughput ({n} thread{'s' if n != 1 else ''}): GFLOP/s from the "
                         "median time, and as a share of the machine's float32 GEMM peak "
                         "(numpy's 2048² sgemm, measured in the same run at the same "
                         "threads)."), "", *flops]
        mem = _memory_table(sel)
        if mem:
            out += ["", (f"Peak extra memory during the first call of a fresh instance "
                         f"({n} thread{'s' if n != 1 else ''}), the output included: "
                         "tracemalloc sees numpy-allocated buffers (n/a for torch, whose "
                         "allocator it cannot see); the RSS high-water rise sees every "
                         "allocation but counts only pages actually touched."), "", *mem]
    if len(threads) > 1:
        out += ["", "## Thread scaling", "",
                (f"Speed-up of each engine from {threads[0]} to n threads "
                 f"(time at {threads[0]} / time at n):"), "", *_scaling_table(rows, threads)]
    notes = []
    for r in rows:
        if r.reason:
            notes.append(f"- `{r.workload}` ({r.threads} thr): {r.status}: {r.reason}")
        for e, m in r.measurements.items():
            if m.status != "ok" and not (e == "tensorgrad" and r.reason):
                notes.append(f"- `{r.workload}` ({r.threads} thr) {ENGINE_LABELS[e]}: "
                             f"{m.status}: {m.reason}")
    out += ["", "## What was measured", ""]
    seen = set()
    for r in rows:
        if r.workload not in seen:
            seen.add(r.workload)
            out.append(f"- `{r.workload}` — {r.title} ({r.size})")
    if notes:
        out += ["", "## Notes", "", *dict.fromkeys(notes)]
    return "\n".join(out) + "\n"


def write_json(path, rows, info, command, settings):
    doc = {"command": command, "machine": info, "settings": settings,
           "rows": [r.to_dict() for r in rows]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)


def write_png(path, rows, settings):
    """A horizontal bar chart of the speed ratios (log scale, line at 1), one panel per
    thread count. Returns None, or the reason the chart was not drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"matplotlib is not installed ({e}); skipped results.png"
    threads = settings["threads"]
    others = [e for e in _engines_in(rows) if e != "tensorgrad"]
    names = list(dict.fromkeys(r.workload for r in rows))
    if not names or not others:
        return "no ratios to plot; skipped results.png"
    height = max(3.0, 0.32 * len(names) * max(1, len(others)) ** 0.5 + 1.6)
    fig, axes = plt.subplots(1, len(threads), figsize=(7.5 * len(threads), height),
                             squeeze=False, sharey=True)
    bar_h = 0.8 / len(others)
    for ax, n in zip(axes[0], threads):
        by_name = {r.workload: r for r in rows if r.threads == n}
        values = []
        for k, e in enumerate(others):
            ys, xs = [], []
            for i, name in enumerate(names):
                r = by_name.get(name)
                ratio = r.ratio(e) if r is not None and r.status == "ok" else None
                if ratio:
                    ys.append(i - 0.4 + bar_h * (k + 0.5))
                    xs.append(ratio)
            values += xs
            ax.barh(ys, xs, height=bar_h * 0.9, color=COLOURS.get(e, "grey"),
                    label=f"{ENGINE_LABELS[e]} time / tensorgrad time")
            for y, x in zip(ys, xs):
                ax.text(x * 1.04, y, f"{x:.2f}×", va="center", fontsize=7)
        ax.set_xscale("log")
        if values:
            lo, hi = min(values + [1.0]), max(values + [1.0])
            ax.set_xlim(lo / 1.6, hi * 2.2)
        ax.axvspan(1.0, ax.get_xlim()[1], color="#2ca02c", alpha=0.06, zorder=0)
        ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
        ax.set_yticks(range(len(names)))
        labels = []
        for name in names:
            r = by_name.get(name)
            status = r.status if r is not None else "not run"
            labels.append(name if status == "ok" else f"{name} ({status})")
        ax.set_yticklabels(labels, fontsize=8)
        for tick, name in zip(ax.get_yticklabels(), names):
            r = by_name.get(name)
            if r is not None and r.status == "WRONG":
                tick.set_color("red")
        ax.invert_yaxis()
        ax.set_xlabel("speed ratio (> 1: tensorgrad is faster), log scale")
        ax.set_title(f"{n} thread{'s' if n != 1 else ''}"
                     f"{' — quick sizes' if settings['quick'] else ''}", fontsize=10)
        ax.grid(axis="x", which="both", alpha=0.25)
    axes[0][0].legend(loc="lower right", fontsize=7)
    fig.suptitle("tensorgrad vs numpy / PyTorch / scikit-learn: other engine's time ÷ "
                 "tensorgrad's", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return None


def write_all(out_dir, rows, info, command, settings, plot=True):
    """Write results.md, results.json and (when matplotlib is there) results.png into
    ``out_dir``, made if needed; returns (markdown text, list of written paths, list of
    messages). Each file is written under a temporary name and renamed into place, so an
    interrupted run never leaves a truncated file."""
    os.makedirs(out_dir, exist_ok=True)
    text = markdown(rows, info, command, settings)
    paths, messages = [], []
    md = os.path.join(out_dir, "results.md")
    with atomic_output(md) as tmp, open(tmp, "w") as f:
        f.write(text)
    paths.append(md)
    js = os.path.join(out_dir, "results.json")
    with atomic_output(js) as tmp:
        write_json(tmp, rows, info, command, settings)
    paths.append(js)
    if plot:
        png = os.path.join(out_dir, "results.png")
        with atomic_output(png) as tmp:
            why = write_png(tmp, rows, settings)
        if why:
            messages.append(why)
        else:
            paths.append(png)
    return text, paths, messages
