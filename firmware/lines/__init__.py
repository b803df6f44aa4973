"""FXS and FXO port state machines (sans-IO): hook, flash, digits, ringing, supervision."""
