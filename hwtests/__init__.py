"""Contract suite for the line card: runs against the simulator and against real hardware."""
