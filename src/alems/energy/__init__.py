"""Energy meters (RAPL, NVML, the CPU model), ``auto`` selection, wraparound tracking,
the sampler and measurement windows. This layer knows nothing about goals or LLMs.

Entry points: :func:`open_meter`, :class:`~alems.energy.sampler.Sampler`,
:class:`~alems.energy.monitor.EnergyMonitor`. Fake powercap trees and the
simulated-RAPL writer live in :mod:`alems.energy.simulated`.
"""

from alems.energy.auto import open_meter
from alems.energy.base import Domain, Meter, summable_keys
from alems.energy.model import ModelParams
from alems.energy.monitor import EnergyMonitor, Measurement
from alems.energy.sampler import Sample, Sampler, read_samples, write_samples

__all__ = [
    "Domain",
    "EnergyMonitor",
    "Measurement",
    "Meter",
    "ModelParams",
    "Sample",
    "Sampler",
    "open_meter",
    "read_samples",
    "summable_keys",
    "write_samples",
]
