#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real (nginx, MariaDB, an sshd
# for the Ansible playbooks),
# only when they are missing, so a warm machine pays nothing.
set -euo pipefail
missing=()
# nginx-extras: nginx with Debian's Lua module, for the swap tests of configurations with Lua blocks
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(nginx-extras)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "esbgen tests need: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Package scripts try to start the services; the tests start their own on loopback.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
