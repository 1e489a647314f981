#!/bin/sh
# make-certs.sh DIR --
#
#	Generates the TLS test certificates (EC P-256 keys, openssl CLI) into DIR
#	(created if missing; existing files are overwritten):
#
#	  ca.pem      ca.key       private CA "tclsmtp test CA" (basicConstraints
#	                           critical CA:TRUE, keyUsage keyCertSign+cRLSign)
#	  server.pem  server.key   signed by the CA: CN=localhost, SAN DNS:localhost,
#	                           IP:127.0.0.1, extendedKeyUsage serverAuth
#	  self.pem    self.key     self-signed, CN=localhost, SAN DNS:localhost,
#	                           IP:127.0.0.1, serverAuth (not trusted by the CA)
#	  wrong.pem   wrong.key    signed by the CA for CN=wrong.example, SAN
#	                           DNS:wrong.example only, serverAuth
#	  expired.pem expired.key  signed by the CA for localhost/127.0.0.1, serverAuth,
#	                           valid 2020-01-01 00:00:00Z .. 2021-01-01 00:00:00Z
#	  client.pem  client.key   signed by the CA: CN=tclsmtp test client,
#	                           extendedKeyUsage clientAuth
#
#	Keys are unencrypted PKCS#8 PEM, mode 0644 like the certificates (test material:
#	a server running as another user, e.g. Postfix's smtpd, must be able to read them). Leaves are X.509 v3 with subject/authority key
#	identifiers and keyUsage digitalSignature; none is a CA. Valid for 10 years
#	(except expired). Expected `openssl verify -CAfile ca.pem` results (OpenSSL 3.0):
#	server OK; self "self-signed certificate"; wrong OK (but -verify_hostname
#	localhost gives "hostname mismatch"); expired "certificate has expired";
#	client OK.
#
#	Quiet on success (exit 0); on any failure prints the failing command and
#	openssl's output on stderr and exits 1. Takes about 0.1 s.

set -u

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: make-certs.sh DIR" >&2
    exit 2
fi
dir=$1
mkdir -p -- "$dir" || exit 1
cd -- "$dir" || exit 1

OPENSSL=${OPENSSL:-openssl}
# Keep the system's openssl.cnf (and its req/x509 defaults) out of the way.
OPENSSL_CONF=$PWD/.make-certs.cnf
export OPENSSL_CONF

errlog=.make-certs.err

run() {
    if ! "$@" >"$errlog" 2>&1; then
	echo "make-certs.sh: failed in $PWD: $*" >&2
	cat "$errlog" >&2
	exit 1
    fi
}

fail() {
    echo "make-certs.sh: $*" >&2
    exit 1
}

cat >"$OPENSSL_CONF" <<'EOF'
# Written by make-certs.sh.
[req]
distinguished_name = req_dn
prompt = no
utf8 = yes
[req_dn]

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[self_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash

[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

# "openssl ca", only for the expired certificate (the only way in OpenSSL 3.0 to
# give a certificate dates in the past).
[ca]
default_ca = test_ca
[test_ca]
database = .make-certs.index
new_certs_dir = .
serial = .make-certs.serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
x509_extensions = server_ext
[policy_any]
commonName = supplied
EOF

newkey="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc"

# The CA.
run "$OPENSSL" req -x509 $newkey -keyout ca.key -out ca.pem -days 3650 \
    -subj "/CN=tclsmtp test CA" -extensions ca_ext

# Leaves signed by the CA straight from req (-CA/-CAkey, OpenSSL 3.0+).
leaf() { # name subject extensions
    run "$OPENSSL" req -x509 $newkey -keyout "$1.key" -out "$1.pem" -days 3650 \
	-subj "$2" -extensions "$3" -CA ca.pem -CAkey ca.key
}
leaf server "/CN=localhost" server_ext
leaf wrong "/CN=wrong.example" wrong_ext
leaf client "/CN=tclsmtp test client" client_ext

# Self-signed.
run "$OPENSSL" req -x509 $newkey -keyout self.key -out self.pem -days 3650 \
    -subj "/CN=localhost" -extensions self_ext

# Expired: a CSR, then "openssl ca" with explicit past dates.
: >.make-certs.index
echo 1000 >.make-certs.serial
run "$OPENSSL" req -new $newkey -keyout expired.key -out .make-certs.expired.csr \
    -subj "/CN=localhost"
run "$OPENSSL" ca -batch -notext -in .make-certs.expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20210101000000Z -extensions server_ext

rm -f -- .make-certs.index* .make-certs.serial* .make-certs.expired.csr \
    1000.pem "$errlog" "$OPENSSL_CONF"

for f in ca server self wrong expired client; do
    [ -s "$f.pem" ] && [ -s "$f.key" ] || fail "$f.pem/$f.key missing in $PWD"
done
chmod 0644 ./*.pem ./*.key || fail "chmod failed in $PWD"
exit 0
