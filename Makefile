# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
DEMO_PORT ?= 8000
BIN := $(VENV)/bin

.PHONY: demo test install clean system-deps

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Start the demo platform, run the content scenario against it, stop the demo.
demo: $(BIN)/.installed
	@$(BIN)/loadgen demo-target --port $(DEMO_PORT) > $(VENV)/demo-target.log 2>&1 & pid=$$!; \
	trap "kill $$pid 2>/dev/null" EXIT; \
	$(BIN)/python -c "import socket,time,sys; \
	deadline=time.time()+20; \
	exec('while time.time()<deadline:\n try:\n  socket.create_connection((\"127.0.0.1\",$(DEMO_PORT)),1).close(); sys.exit(0)\n except OSError: time.sleep(0.2)'); \
	sys.exit('the demo target did not start; see $(VENV)/demo-target.log')"; \
	$(BIN)/loadgen run scenarios/content.py --host http://127.0.0.1:$(DEMO_PORT)

# What the tests start themselves when it is missing: nginx and tinyproxy (TLS, HTTP/2,
# proxies; certificates made by openssl), Prometheus (Debian's package,
# for promtool and a real scrape), Chromium (headless, for the HTML report), and
# for tests/test_image.py: podman (Debian's docker.io has no BuildKit for RUN
# --mount), runc (crun cannot start containers under hybrid cgroups), debootstrap
# (the stand-in base images), podman-compose and the dnsname CNI plugin (the
# compose services find each other by name). Installed only where we can (root + apt);
# a name counts as present when it is a command or an installed Debian package.
SYSTEM_PACKAGES := nginx tinyproxy openssl prometheus chromium podman runc debootstrap podman-compose \
	golang-github-containernetworking-plugin-dnsname
system-deps:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do \
	  command -v $$pkg >/dev/null 2>&1 || dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }; \
	  else \
	    echo "not installed:$$missing (tests that need them will skip; install them with apt or your package manager)"; \
	  fi; \
	fi

test: $(BIN)/.installed system-deps
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
