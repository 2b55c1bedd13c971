"""An office PBX appliance: registrar, hunt groups, IVR, queues and night mode on a Raspberry Pi."""

__version__ = "0.1.0"
