"""Stages 6-8: boards, the toolchain, builds, the emulator and flashing."""
