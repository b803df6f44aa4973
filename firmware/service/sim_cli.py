"""``ponte sim``: the line-card simulator with the firmware's signal processing.

The commands are :mod:`drivers.sim.cli`'s (documented in docs/simulator.md); ``start`` runs
the simulator with :class:`firmware.service.simkit.DspKit`, so every country profile works
and the exchange sends real caller ID.
"""

from __future__ import annotations

import argparse

from drivers.sim import cli as sim_cli

HELP = sim_cli.HELP


def configure(parser: argparse.ArgumentParser) -> None:
    sim_cli.configure(parser)


def main(args: argparse.Namespace) -> int:
    signals = None
    if args.command == "start":
        from firmware.service.simkit import DspKit

        signals = DspKit()
    return sim_cli.main(args, signals)
