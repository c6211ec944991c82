"""Pictures of the network: `render_rgb` (an RGB array, headless) and `render_human` (a window).

The picture shows:

- the orchestrator in the centre, aggregators on a circle around it (radius grows with the log of
  the link length), processing units as small dots fanned out behind their aggregator (at most
  `MAX_PUS_DRAWN` each, the rest counted as "+N"); marker and colour by node type (quantum,
  hybrid, legacy classical);
- each aggregator-orchestrator link coloured by its stored-pair fidelity and labelled with its
  estimated QBER (legacy classical links, which run no quantum channel, in grey); satellite links
  dashed through a satellite marker (grey while below the horizon), repeater links with their
  `repeater_segments - 1` repeater nodes;
- tapped links (hidden from the agents) outlined in red with a red X, links with a QBER alarm
  flagged in orange;
- per aggregator, bars of buffer, key pool and pair memory fill;
- the scenario and step in the title and, when given, a box of KPIs.

`render_rgb` never touches pyplot: it draws on a `Figure` with the Agg canvas, so it runs
headless and in threads. For speed, each thread keeps a few prepared scenes (one per topology):
the parts that never change (processing units, legend, colour bar, axes) are drawn once and
blitted, and only the state-dependent artists are redrawn on each call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium.error import DependencyNotInstalled

try:
    import matplotlib  # noqa: F401  (the `plots` extra)
except ModuleNotFoundError as err:
    raise DependencyNotInstalled("render() draws with matplotlib, which is not installed: "
                                 "pip install 'qin-env[plots]'") from err
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path

from qin_env import core
from qin_env.params import Params, load_params

WIDTH_PX, HEIGHT_PX, DPI = 800, 600, 100
MAX_PUS_DRAWN = 12
FIDELITY_RANGE = (0.25, 1.0)
# viridis without its palest yellow end, so good links stay visible on white
FIDELITY_CMAP = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.88, 256)), name="qin_fidelity")
FIDELITY_NORM = Normalize(*FIDELITY_RANGE, clip=True)

ORCHESTRATOR_COLOR = "#1d3557"
NODE_STYLE = {  # node type: (marker, face colour, legend label)
    "quantum": ("D", "#7b2cbf", "quantum aggregator"),
    "hybrid": ("o", "#1982c4", "hybrid aggregator"),
    "classical": ("s", "#8d99ae", "legacy classical aggregator"),
}
CLASSICAL_LINK_COLOR = "#adb5bd"
EVE_COLOR = "#d62828"
ALARM_COLOR = "#f77f00"
SATELLITE_COLORS = ("#ced4da", "#ffb703")  # below the horizon, overhead
BAR_STYLE = (("buffer", "#e76f51"), ("key pool", "#e9c46a"), ("pair memory", "#2a9d8f"))
KPI_ROWS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("model_quality", "model quality", lambda v: f"{v:.3f}"),
    ("latency_s", "latency", lambda v: f"{v * 1e3:.0f} ms"),
    ("qber", "max QBER", lambda v: f"{v * 100:.1f} %"),
    ("leaked_bits", "leaked", lambda v: f"{v:,.0f} bit"),
    ("secret_key_bits", "new key", lambda v: f"{v:,.0f} bit"),
    ("eve_detected", "eve detected", lambda v: "YES" if v > 0 else "no"),
)
NET_RECT = (0.0, 0.1, 0.64, 0.83)  # figure fractions of the network drawing
SCENES_PER_THREAD = 4


def _satellite_marker() -> Path:
    """A small satellite: a body between two solar panels."""
    def rect(x0: float, x1: float, y0: float, y1: float) -> list[tuple[float, float]]:
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]

    polys = [rect(-1.0, -0.45, -0.3, 0.3), rect(-0.45, -0.25, -0.06, 0.06), rect(-0.25, 0.25, -0.35, 0.35),
             rect(0.25, 0.45, -0.06, 0.06), rect(0.45, 1.0, -0.3, 0.3)]
    verts = [v for p in polys for v in p]
    codes = [c for _ in polys for c in (Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY)]
    return Path(verts, codes)


SATELLITE_MARKER = _satellite_marker()


def _node_types(quantum_share: np.ndarray, is_classical: np.ndarray) -> list[str]:
    return ["classical" if c else ("quantum" if q >= 1.0 else "hybrid")
            for q, c in zip(quantum_share, is_classical, strict=True)]


def _radii(lengths: np.ndarray, r_min: float = 0.55, r_max: float = 1.0) -> np.ndarray:
    """Aggregator distance from the centre, growing with the log of the link length."""
    logs = np.log10(np.maximum(lengths, 1e-3))
    span = logs.max() - logs.min()
    if span < 1e-9:
        return np.full(lengths.shape, 0.5 * (r_min + r_max))
    return r_min + (r_max - r_min) * (logs - logs.min()) / span


def _along(points: np.ndarray, frac: float) -> np.ndarray:
    """The point at `frac` of the arc length of a polyline."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    target = frac * seg.sum()
    for i, length in enumerate(seg):
        if target <= length or i == len(seg) - 1:
            return points[i] + (points[i + 1] - points[i]) * min(target / max(length, 1e-12), 1.0)
        target -= length
    return points[-1]


def _label_fractions(segments: int, satellite: bool) -> tuple[float, float]:
    """Where along a link its label and its eavesdropper mark go, clear of repeaters and satellite."""
    if satellite:
        return 0.5, 0.3
    if segments <= 1:
        return 0.5, 0.78
    return 0.5, (segments - 0.5) / segments  # the label goes beside a repeater link, not on it


def _beside(direction: np.ndarray, half_w: float, half_h: float, gap: float = 4.0) -> tuple[float, float]:
    """Offset (points) that puts a box of half sizes `half_w`, `half_h` just clear of a point along `direction`."""
    ux, uy = abs(direction[0]), abs(direction[1])
    reach = min(half_w / ux if ux > 1e-9 else np.inf, half_h / uy if uy > 1e-9 else np.inf)
    return tuple(direction * (reach + gap))


def _topology(params: Params) -> dict[str, Any]:
    """The parts of `params` the layout depends on, as NumPy."""
    return {
        "scenario": params.scenario,
        "max_steps": params.max_steps,
        "length": np.asarray(params.link_length_km, np.float64),
        "satellite": np.asarray(params.is_satellite, bool),
        "segments": np.maximum(np.asarray(params.repeater_segments).round().astype(int), 1),
        "quantum_share": np.asarray(params.quantum_share, np.float64),
        "classical": np.asarray(params.is_classical, bool),
        "pus": np.bincount(np.asarray(params.pu_parent), minlength=params.n_aggregators),
    }


def _topology_key(topo: dict[str, Any]) -> tuple:
    return tuple(v.tobytes() if isinstance(v, np.ndarray) else v for v in topo.values())


def _dynamic(topo: dict[str, Any], state: core.State, params: Params) -> dict[str, Any]:
    """The state-dependent values of the picture, converted from JAX once."""
    capacity = np.maximum(np.asarray(params.qubit_budget) * float(params.hw["memory_modes_per_qubit"]), 1.0)
    fills = np.stack([
        np.asarray(state.backlog_bits) / max(float(params.traffic["buffer_bits"]), 1.0),
        np.asarray(state.key_bits) / max(float(params.qkd["key_pool_max_bits"]), 1.0),
        np.asarray(state.pairs) / capacity,
    ], axis=1)
    return {
        "t": int(np.asarray(state.t)),
        "fidelity": np.asarray(state.pair_fidelity, np.float64),
        "qber": np.asarray(state.qber_estimate, np.float64),
        "tap": np.asarray(state.tap, np.float64),
        "alarm": np.asarray(state.alarm, np.float64),
        "eta": np.asarray(state.eta_direct, np.float64),
        "fills": np.nan_to_num(fills).clip(0.0, 1.0),
    }


class _Scene:
    """A prepared figure of one topology: static parts drawn once, state-dependent artists updated."""

    def __init__(self, topo: dict[str, Any]) -> None:
        self.topo = topo
        n_agg = len(topo["length"])
        self.many = n_agg > 6
        self.fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
        self.canvas = FigureCanvasAgg(self.fig)
        self.dynamic: list[Any] = []  # drawn in this order on every call
        self.title = self.fig.text(0.5, 0.965, "", fontsize=11, fontweight="bold", ha="center", va="center",
                                   animated=True)
        self.net = self.fig.add_axes(NET_RECT)
        self._network()
        cax = self.fig.add_axes((0.1, 0.075, 0.44, 0.022))
        cbar = self.fig.colorbar(ScalarMappable(norm=FIDELITY_NORM, cmap=FIDELITY_CMAP), cax=cax,
                                 orientation="horizontal")
        cbar.set_label("stored-pair fidelity of the link (grey: classical only)", fontsize=7.5, labelpad=1)
        cbar.ax.tick_params(labelsize=6.5, length=2, pad=1)
        handles = self._legend_handles()
        legend_h = 0.0275 * len(handles)
        kpi_top = 0.25
        bar_h = min(float(np.clip(0.075 * n_agg + 0.03, 0.12, 0.36)), 0.9 - 0.09 - kpi_top - legend_h)
        self.bars_ax = self.fig.add_axes((0.705, 0.9 - bar_h, 0.27, bar_h))
        self._bars(bar_h)
        self.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.655, 0.9 - bar_h - 0.09), fontsize=7,
                        frameon=False, handlelength=1.6, borderaxespad=0.0, labelspacing=0.45)
        self.kpi_text = self.fig.text(0.66, 0.03, "", fontsize=7, family="monospace", va="bottom", ha="left",
                                      animated=True, bbox={"boxstyle": "round,pad=0.4", "fc": "#f8f9fa", "ec": "0.6",
                                                           "lw": 0.6})
        self.dynamic += [self.title, self.kpi_text]
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    # ---------------------------------------------------------------- construction

    def _network(self) -> None:
        topo, ax, many = self.topo, self.net, self.many
        n_agg = len(topo["length"])
        types = _node_types(topo["quantum_share"], topo["classical"])
        angles = 2.0 * np.pi * np.arange(n_agg) / n_agg + (np.pi / 2 if n_agg % 2 else 0.0)
        unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        radii = _radii(topo["length"], r_min=0.62 if many else 0.55)
        pos = unit * radii[:, None]
        fs = 6.5 if many else 7.5
        extent = [np.zeros(2), *pos]

        # processing units fanned out behind their aggregator (static, under everything else)
        fan_r = 0.11 if many else 0.16
        spread = np.deg2rad(100.0 if many else 140.0)
        dots, spokes, colors = [], [], []
        for i in range(n_agg):
            shown = min(int(topo["pus"][i]), MAX_PUS_DRAWN)
            if shown == 0:
                continue
            offs = np.linspace(-spread / 2, spread / 2, shown) if shown > 1 else np.zeros(1)
            pts = pos[i] + fan_r * np.stack([np.cos(angles[i] + offs), np.sin(angles[i] + offs)], axis=1)
            dots.append(pts)
            spokes += [np.stack([pos[i], p]) for p in pts]
            colors += [NODE_STYLE[types[i]][1]] * shown
            extent += list(pts)
            if topo["pus"][i] > shown:
                tip = pos[i] + (fan_r + (0.09 if many else 0.1)) * unit[i]
                ax.text(*tip, f"+{topo['pus'][i] - shown}", fontsize=fs - 0.5, ha="center", va="center",
                        color="0.25")
                extent.append(tip)
        if dots:
            ax.add_collection(LineCollection(spokes, colors="0.75", linewidths=0.6, zorder=1))
            ax.scatter(*np.concatenate(dots).T, s=9 if many else 14, c=colors, edgecolors="white", linewidths=0.4,
                       zorder=3)

        # links: outline when tapped, the link, repeaters, satellite, eve mark, label
        self.outlines, self.links, self.sats, self.eves, self.labels = [], [], [], [], []
        for i in range(n_agg):
            sat = topo["satellite"][i]
            if sat:
                perp = np.array([-unit[i, 1], unit[i, 0]])
                bend = 0.5 * pos[i] + 0.3 * np.linalg.norm(pos[i]) * perp
                path = np.stack([np.zeros(2), bend, pos[i]])
                extent.append(bend)
            else:
                path = np.stack([np.zeros(2), pos[i]])
            (outline,) = ax.plot(*path.T, "-", color=EVE_COLOR, lw=7.5, alpha=0.55, solid_capstyle="round",
                                 animated=True)
            (link,) = ax.plot(*path.T, "--" if sat else "-", lw=3.2, animated=True)
            self.outlines.append(outline)
            self.links.append(link)
            self.dynamic += [outline, link]
            segments = int(topo["segments"][i])
            if segments > 1:
                rep = np.array([_along(path, k / segments) for k in range(1, segments)])
                (reps,) = ax.plot(*rep.T, "o", ms=5.5, mfc="white", mec="black", mew=1.0, ls="none", animated=True)
                self.dynamic.append(reps)
            if sat:
                (marker,) = ax.plot(*bend, marker=SATELLITE_MARKER, ms=18, mec="black", mew=0.6, ls="none",
                                    animated=True)
                self.sats.append((i, marker))
                self.dynamic.append(marker)
            f_label, f_eve = _label_fractions(segments, sat)
            if many and not sat:  # crowded: label nearer the centre, eve mark just before the node
                f_label = 0.58 if segments <= 1 else (np.floor(0.58 * segments) + 0.5) / segments
                f_eve = 1.0 - 0.095 / radii[i] if segments <= 1 else f_eve
            (eve,) = ax.plot(*_along(path, f_eve), marker="X", ms=9 if many else 11, mfc=EVE_COLOR, mec="white",
                             mew=0.8, ls="none", animated=True)
            self.eves.append(eve)
            self.dynamic.append(eve)
            anchor, offset = _along(path, f_label), (0.0, 0.0)
            half = (20.0, 7.0) if many else (33.0, 13.0)  # label half sizes in points, padding included
            if sat:  # beside the satellite, away from the link
                anchor, offset = bend, _beside(np.array([-unit[i, 1], unit[i, 0]]), half[0] + 10.0, half[1] + 6.0)
            elif segments > 1 and not many:  # beside the link, clear of its repeaters
                offset = _beside(np.array([-unit[i, 1], unit[i, 0]]), *half)
            label = ax.annotate("", anchor, xytext=offset, textcoords="offset points", fontsize=fs,
                                ha="center", va="center", animated=True,
                                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.9})
            self.labels.append(label)

        # nodes on top of the links, link labels on top of everything
        for i in range(n_agg):
            marker, face, _ = NODE_STYLE[types[i]]
            (node,) = ax.plot(*pos[i], marker=marker, ms=15 if many else 19, mfc=face, mec="black", mew=1.0,
                              ls="none", animated=True)
            text = ax.text(*pos[i], f"A{i}", fontsize=fs - 0.5, ha="center", va="center", color="white",
                           fontweight="bold", animated=True)
            self.dynamic += [node, text]
        (hub,) = ax.plot(0.0, 0.0, marker="h", ms=26, mfc=ORCHESTRATOR_COLOR, mec="black", mew=1.0, ls="none",
                         animated=True)
        hub_text = ax.text(0.0, 0.0, "O", fontsize=9, ha="center", va="center", color="white", fontweight="bold",
                           animated=True)
        self.dynamic += [hub, hub_text, *self.labels]
        self._fit(np.array(extent))

    def _fit(self, points: np.ndarray) -> None:
        """Limits around the drawing with equal aspect in the axes box."""
        margin = 0.16 if self.many else 0.2
        lo, hi = points.min(axis=0) - margin, points.max(axis=0) + margin
        center, span = (lo + hi) / 2, hi - lo
        box = np.array([NET_RECT[2] * WIDTH_PX, NET_RECT[3] * HEIGHT_PX])
        scale = max(span[0] / box[0], span[1] / box[1])  # data units per pixel
        half = scale * box / 2
        ax = self.net
        ax.set_xlim(center[0] - half[0], center[0] + half[0])
        ax.set_ylim(center[1] - half[1], center[1] + half[1])
        ax.set_aspect("equal", adjustable="box")
        ax.axis("off")

    def _bars(self, height_frac: float) -> None:
        ax = self.bars_ax
        n_agg = len(self.topo["length"])
        height = 0.26
        rows = np.arange(n_agg)
        self.bar_patches = []
        for j, (name, color) in enumerate(BAR_STYLE):
            y = rows + (j - 1) * height
            ax.barh(y, np.ones(n_agg), height=height * 0.9, color="0.93", zorder=1)
            bars = ax.barh(y, np.zeros(n_agg), height=height * 0.9, color=color, label=name, zorder=2, animated=True)
            self.bar_patches.append(list(bars.patches))
            self.dynamic += list(bars.patches)
        fs = 6.5 if self.many else 7.5
        ax.set_yticks(rows, [f"A{i}" for i in range(n_agg)], fontsize=fs)
        ax.set_ylim(n_agg - 0.5, -0.5)
        ax.set_xlim(0.0, 1.0)
        ax.set_xticks([0.0, 0.5, 1.0], ["0", "50%", "100%"], fontsize=6.5)
        ax.tick_params(axis="both", length=2, pad=1.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title("fill per aggregator", fontsize=8, pad=3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.45, -0.035 / height_frac), ncol=3, fontsize=6.5,
                  frameon=False, handlelength=1.0, columnspacing=0.8, handletextpad=0.4)

    def _legend_handles(self) -> list[Line2D]:
        topo = self.topo

        def h(label: str, **kw: Any) -> Line2D:
            kw.setdefault("ls", "none")
            return Line2D([], [], label=label, **kw)

        handles = [h("orchestrator", marker="h", ms=10, mfc=ORCHESTRATOR_COLOR, mec="black")]
        present = set(_node_types(topo["quantum_share"], topo["classical"]))
        for kind, (marker, face, label) in NODE_STYLE.items():
            if kind in present:
                handles.append(h(label, marker=marker, ms=7, mfc=face, mec="black"))
        handles.append(h("processing unit", marker="o", ms=4, mfc="0.55", mec="white"))
        if np.any(topo["segments"] > 1):
            handles.append(h("quantum repeater", marker="o", ms=5, mfc="white", mec="black"))
        if np.any(topo["satellite"]):
            handles.append(h("satellite link (grey: below horizon)", marker=SATELLITE_MARKER, ms=11,
                             mfc=SATELLITE_COLORS[1], mec="black", mew=0.5, color="0.4", lw=1.5, ls="--"))
        handles.append(h("eavesdropper (hidden from agents)", marker="X", ms=8, mfc=EVE_COLOR, mec="white",
                         color=EVE_COLOR, lw=5, alpha=0.7, ls="-"))
        handles.append(h("QBER alarm on the link", marker="$\u26a0$", ms=9, color=ALARM_COLOR, mec=ALARM_COLOR))
        return handles

    # ---------------------------------------------------------------- per call

    def render(self, d: dict[str, Any], kpi: dict[str, float] | None) -> np.ndarray:
        topo = self.topo
        self.title.set_text(f"QIN network \u2014 {topo['scenario']}   \u00b7   step {d['t']} / {topo['max_steps']}")
        for i, (outline, link, eve, label) in enumerate(zip(self.outlines, self.links, self.eves, self.labels,
                                                            strict=True)):
            legacy = topo["classical"][i]
            tapped, alarm = d["tap"][i] > 0, d["alarm"][i] > 0
            outline.set_visible(tapped)
            eve.set_visible(tapped)
            link.set_color(CLASSICAL_LINK_COLOR if legacy else FIDELITY_CMAP(FIDELITY_NORM(d["fidelity"][i])))
            qber = f"{d['qber'][i] * 100:.1f}%"
            text = "no QKD" if legacy else (qber if self.many else f"QBER {qber}")
            if alarm:
                text = "\u26a0 " + text
            if not self.many:
                head = "LEO satellite" if topo["satellite"][i] else f"{topo['length'][i]:.0f} km"
                text = f"{head}\n{text}"
            label.set_text(text)
            label.set_color(ALARM_COLOR if alarm else "black")
            label.set_fontweight("bold" if alarm else "normal")
            patch = label.get_bbox_patch()
            patch.set_edgecolor(ALARM_COLOR if alarm else "0.6")
            patch.set_linewidth(1.3 if alarm else 0.5)
        for i, marker in self.sats:
            marker.set_markerfacecolor(SATELLITE_COLORS[int(d["eta"][i] > 0)])
        for j, patches in enumerate(self.bar_patches):
            for patch, fill in zip(patches, d["fills"][:, j], strict=True):
                patch.set_width(float(fill))
        if kpi is not None:
            rows = [f"{label:<13}{fmt(float(kpi[name])):>11}" for name, label, fmt in KPI_ROWS if name in kpi]
            self.kpi_text.set_text("KPIs this slot\n" + "\n".join(rows))
        self.kpi_text.set_visible(kpi is not None)

        self.canvas.restore_region(self.background)
        renderer = self.canvas.get_renderer()
        for artist in self.dynamic:
            if artist.get_visible():
                artist.draw(renderer)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


_LOCAL = threading.local()


def _scene(topo: dict[str, Any]) -> _Scene:
    """This thread's prepared scene of a topology (a few are kept, least recently used dropped)."""
    scenes: OrderedDict[tuple, _Scene] | None = getattr(_LOCAL, "scenes", None)
    if scenes is None:
        scenes = _LOCAL.scenes = OrderedDict()
    key = _topology_key(topo)
    if key in scenes:
        scenes.move_to_end(key)
        return scenes[key]
    scene = scenes[key] = _Scene(topo)
    while len(scenes) > SCENES_PER_THREAD:
        scenes.popitem(last=False)
    return scene


def render_rgb(state: core.State, params: Params, kpi: dict[str, float] | None = None) -> np.ndarray:
    """The network at `state` as a (600, 800, 3) uint8 RGB picture (headless, thread-safe).

    `kpi` is the step's KPI dict (`infos[agent]["kpi"]`); when given, a box shows a few of them.
    """
    topo = _topology(params)
    dynamic = _dynamic(topo, state, params)
    # matplotlib's text layout and font caches are shared between threads: draw one picture at a time
    with _DRAW_LOCK:
        return _scene(topo).render(dynamic, kpi)


_DRAW_LOCK = threading.Lock()


_HUMAN: dict[str, Any] = {"fig": None, "image": None}


def render_human(state: core.State, params: Params, kpi: dict[str, float] | None = None) -> None:
    """Show the `render_rgb` picture in a pyplot window, reusing one figure across calls.

    Under a non-interactive backend (Agg, PDF, ...) the figure is updated but nothing is shown
    and nothing blocks.
    """
    import matplotlib.pyplot as plt
    from matplotlib.backends import BackendFilter, backend_registry

    rgb = render_rgb(state, params, kpi)
    fig = _HUMAN["fig"]
    if fig is None or not plt.fignum_exists(fig.number):
        fig = plt.figure("QIN-Gym", figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.axis("off")
        _HUMAN["fig"], _HUMAN["image"] = fig, ax.imshow(rgb, interpolation="nearest")
    else:
        _HUMAN["image"].set_data(rgb)
    backend = plt.get_backend().lower()
    if backend in backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE) or "inline" in backend:
        fig.canvas.draw_idle()
        return
    plt.pause(0.001)


def close_human() -> None:
    """Close the `render_human` window, if one is open."""
    if _HUMAN["fig"] is not None:
        import matplotlib.pyplot as plt

        plt.close(_HUMAN["fig"])
    _HUMAN["fig"], _HUMAN["image"] = None, None


def _kpi_record(transition: Any) -> dict[str, Any]:
    """What `example` keeps of each slot: the KPIs, to label the last picture."""
    return transition.infos["orchestrator"]["kpi"]


def example(scenario: str = "metro_qkd", steps: int = 20, overrides: dict[str, Any] | None = None,
            seed: int = 0) -> np.ndarray:
    """The picture after `steps` heuristic slots of a scenario (the one in docs/network_render.png)."""
    import jax

    from qin_env.policies import heuristic_policy
    from qin_env.rollout import rollout

    params = load_params(scenario, {"eve.mode": "stationary"} if overrides is None else overrides)
    kpis, state = jax.jit(lambda key: rollout(heuristic_policy, params, key, _kpi_record, steps))(jax.random.key(seed))
    return render_rgb(state, params, {k: float(v[-1]) for k, v in kpis.items()})


if __name__ == "__main__":  # python -m qin_env.render [scenario] [steps] [out.png]
    import sys

    from matplotlib.image import imsave

    args = sys.argv[1:]
    picture = example(args[0] if args else "metro_qkd", int(args[1]) if len(args) > 1 else 20)
    imsave(args[2] if len(args) > 2 else "docs/network_render.png", picture)
