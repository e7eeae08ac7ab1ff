"""Reports, sweeps over variants, hot spots and model inspection."""
