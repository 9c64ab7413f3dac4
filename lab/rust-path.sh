# Sourced by the commands the README runs with sudo (demo, run-tests,
# soak/run, bench/run): sudo resets PATH to its secure_path, which lacks
# root's ~/.cargo/bin, where rustup installs cargo.
# shellcheck shell=bash
command -v cargo >/dev/null || PATH=$PATH:$(getent passwd root | cut -d: -f6)/.cargo/bin
