"""Bit-accurate emulation of the trigger: ap_fixed arithmetic, emulator, C-simulation bridge."""
