"""Weight load time: disk (or page cache), then host-to-device copies over PCIe.

cold   = engine start + max(file bytes / disk read rate, GPU bytes / host-to-device rate)
cached = engine start + max(file bytes / page-cache read rate, GPU bytes / host-to-device rate)

Reading and uploading overlap (both engines stream tensors), so the slower one counts. llama.cpp
uploads tensors one after another; vLLM/TGI workers load their shards in parallel, one per GPU.
"""

from __future__ import annotations

from rigkit.estimate.params import Params
from rigkit.estimate.resolve import GpuNums


def load_times(
    p: Params,
    g: GpuNums,
    file_bytes: float,
    gpu_bytes: list[float],
    parallel_upload: bool,
    disk_read_gb_s: float | None,
) -> tuple[float, float, tuple[tuple[str, float], ...]]:
    """(cold_s, cached_s, terms) for loading ``file_bytes`` and placing ``gpu_bytes`` per GPU."""
    disk = (disk_read_gb_s if disk_read_gb_s else p.default_disk_read_gb_s) * 1e9
    h2d = g.pcie_bw_raw * p.pcie_efficiency
    t_h2d = (max(gpu_bytes) if parallel_upload else sum(gpu_bytes)) / h2d if gpu_bytes else 0.0
    t_disk = file_bytes / disk
    t_cache = file_bytes / (p.page_cache_read_gb_s * 1e9)
    cold = p.init_s + max(t_disk, t_h2d)
    cached = p.init_s + max(t_cache, t_h2d)
    terms = (
        ("engine_start_s", p.init_s),
        ("disk_read_s", t_disk),
        ("page_cache_read_s", t_cache),
        ("host_to_device_s", t_h2d),
    )
    return cold, cached, terms
