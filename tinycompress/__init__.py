"""tinycompress: compress neural networks and compile them to measured C for Arm Cortex-M."""
__version__ = "0.1.0"
