#!/bin/sh
# SPDX-License-Identifier: MIT
# mkcerts.sh DIR - TLS credentials for the tests, made with the openssl CLI
# (the recipe of shared/test-recipes.md), each set in the QEMU/libvirt
# layout of design.md (ca-cert.pem, server-cert.pem, server-key.pem,
# client-cert.pem, client-key.pem):
#   DIR/good       one CA; server and client certificates for DNS:localhost,
#                  IP:127.0.0.1, IP:10.77.0.1, IP:10.77.0.2 (the test bed)
#   DIR/otherca    the same names signed by another CA
#   DIR/expired    good's CA; server and client certificates valid only in
#                  January 2020 (openssl ca -startdate/-enddate: no sleeps,
#                  and expired for certain on every clock after 2020)
#   DIR/wrongname  good's CA; the server certificate names only
#                  DNS:wrong.example; good's client certificate
#   DIR/noclient   good's CA and nothing else: a client without a certificate
# CA keys stay in DIR/.ca-*. P-256 keys: the whole run takes ~0.2 s.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
command -v openssl >/dev/null || { echo "$0: the openssl CLI is not installed" >&2; exit 77; }
D=$1
mkdir -p "$D"
D=$(cd "$D" && pwd)
SANS=DNS:localhost,IP:127.0.0.1,IP:10.77.0.1,IP:10.77.0.2
q() { "$@" >/dev/null 2>"$D/.openssl.log" || { cat "$D/.openssl.log" >&2; exit 1; }; }

# newca NAME CN: DIR/.ca-NAME/{ca-cert.pem,ca-key.pem} and an `openssl ca` database
newca() {
	c=$D/.ca-$1
	mkdir -p "$c/db"
	: > "$c/db/index"
	echo 01 > "$c/db/serial"
	q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=$2" -keyout "$c/ca-key.pem" -out "$c/ca-cert.pem"
	cat > "$c/ca.cnf" <<CNF
[ca]
default_ca = c
[c]
database = $c/db/index
new_certs_dir = $c/db
serial = $c/db/serial
default_md = sha256
policy = p
unique_subject = no
copy_extensions = none
[p]
commonName = supplied
[ext]
subjectAltName = \$ENV::SANS
extendedKeyUsage = \$ENV::EKU
basicConstraints = CA:FALSE
CNF
}

# sign CA OUTDIR ROLE SANS [STARTDATE ENDDATE]: OUTDIR/ROLE-{cert,key}.pem
sign() {
	c=$D/.ca-$1 o=$2 r=$3 sans=$4
	mkdir -p "$o"
	q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$r" \
		-keyout "$o/$r-key.pem" -out "$o/$r.csr"
	if [ "$r" = server ]; then EKU=serverAuth; else EKU=clientAuth; fi
	if [ $# -ge 6 ]; then set -- -startdate "$5" -enddate "$6"; else set -- -days 30; fi
	SANS=$sans EKU=$EKU q openssl ca -batch -notext -config "$c/ca.cnf" -cert "$c/ca-cert.pem" \
		-keyfile "$c/ca-key.pem" -in "$o/$r.csr" -out "$o/$r-cert.pem" -extensions ext "$@"
	rm -f "$o/$r.csr"
	chmod 600 "$o/$r-key.pem"
}

newca good test-ca
newca other other-ca
for s in good otherca expired wrongname noclient; do
	rm -rf "${D:?}/$s"
	mkdir -p "$D/$s"
done
for s in good expired wrongname noclient; do cp "$D/.ca-good/ca-cert.pem" "$D/$s/"; done
cp "$D/.ca-other/ca-cert.pem" "$D/otherca/"
for r in server client; do
	sign good "$D/good" $r $SANS
	sign other "$D/otherca" $r $SANS
	sign good "$D/expired" $r $SANS 20200101000000Z 20200102000000Z
done
sign good "$D/wrongname" server DNS:wrong.example
cp "$D/good/client-cert.pem" "$D/good/client-key.pem" "$D/wrongname/"
rm -f "$D/.openssl.log"

# what the tests rely on, checked here once
openssl verify -CAfile "$D/good/ca-cert.pem" "$D/good/server-cert.pem" "$D/good/client-cert.pem" \
	>/dev/null
if openssl verify -CAfile "$D/expired/ca-cert.pem" "$D/expired/server-cert.pem" >/dev/null 2>&1; then
	echo "$0: $D/expired/server-cert.pem verifies: not expired" >&2
	exit 1
fi
