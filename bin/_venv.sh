# Sourced by bin/start and bin/test: make .venv with Python 3.11+ and install the named
# requirements file, again only when that file changed (a stamp holds its checksum).
requirements="$1"
pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Amends needs Python 3.11 or newer; install it (e.g. apt-get install python3.11 python3.11-venv)." >&2
  return 1
}
if [ ! -x .venv/bin/python ]; then
  python=$(pick_python)
  echo "Creating .venv with $python …" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$requirements").sha256"
want=$(cat requirements.txt "$requirements" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing $requirements into .venv …" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi
