#!/usr/bin/env bash
# Rewrites test/fixtures/keras/ with real Keras (see make_fixtures.py). Makes a
# throwaway venv with tensorflow-cpu; extra pip arguments (an --index-url, say)
# come from PIP_ARGS.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/pip" install -q ${PIP_ARGS:-} tensorflow-cpu h5py
"$venv/bin/python" scripts/keras-fixtures/make_fixtures.py test/fixtures/keras
