// Package certgen makes a small certificate authority and the
// certificates of chaosd's parts (chaosd's server and client certificate,
// each agent's server certificate, client certificates for chaosctl or
// Prometheus) for the lab and for first deployments; "chaosd certs" and
// the lab both use it. Production deployments may use cert-manager
// instead: chaosd only reads PEM files.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chaosd/chaosd/internal/secretfile"
)

// Spec says which certificates to make.
type Spec struct {
	// Dir receives ca.crt/ca.key and NAME.crt/NAME.key per certificate.
	// An existing ca.crt/ca.key pair there is reused, so certificates can
	// be added later under the same CA.
	Dir string
	// Chaosd is the names and IPs of chaosd's API (its server
	// certificate, which is also its client certificate towards agents).
	// Nil: no chaosd certificate.
	Chaosd []string
	// Agents are the agents' server certificates.
	Agents []Agent
	// Clients are names of client certificates (e.g. "chaosctl").
	Clients []string
	// Validity of the certificates (default one year; the CA's is ten
	// times longer).
	Validity time.Duration
}

// Agent is one agent's certificate: written as agent-NAME.crt/.key, with
// NAME and Hosts (names or IPs) as subject alternative names.
type Agent struct {
	Name  string
	Hosts []string
}

// File names in Spec.Dir.
const (
	CAFile      = "ca.crt"
	CAKeyFile   = "ca.key"
	ChaosdName  = "chaosd"
	AgentPrefix = "agent-"
)

// CertPath and KeyPath are where a certificate named name is written.
func CertPath(dir, name string) string { return filepath.Join(dir, name+".crt") }
func KeyPath(dir, name string) string  { return filepath.Join(dir, name+".key") }

// Generate writes the certificates of spec and returns the names of the
// files written (CA first).
func Generate(spec Spec) ([]string, error) {
	if spec.Dir == "" {
		return nil, errors.New("certs: a directory is required")
	}
	if spec.Validity <= 0 {
		spec.Validity = 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	caCert, caKey, written, err := loadOrMakeCA(spec.Dir, 10*spec.Validity)
	if err != nil {
		return nil, err
	}
	issue := func(name string, hosts []string, usage ...x509.ExtKeyUsage) error {
		if strings.ContainsAny(name, "/\\") || name == "" || name == "ca" {
			return fmt.Errorf("certs: bad certificate name %q", name)
		}
		tmpl, err := template(name, spec.Validity)
		if err != nil {
			return err
		}
		tmpl.ExtKeyUsage = usage
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		if err := writePair(spec.Dir, name, tmpl, caCert, caKey); err != nil {
			return err
		}
		written = append(written, CertPath(spec.Dir, name), KeyPath(spec.Dir, name))
		return nil
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if spec.Chaosd != nil {
		if err := issue(ChaosdName, append([]string{ChaosdName}, spec.Chaosd...), both...); err != nil {
			return nil, err
		}
	}
	for _, a := range spec.Agents {
		if err := issue(AgentPrefix+a.Name, append([]string{a.Name}, a.Hosts...), x509.ExtKeyUsageServerAuth); err != nil {
			return nil, err
		}
	}
	for _, c := range spec.Clients {
		if err := issue(c, nil, x509.ExtKeyUsageClientAuth); err != nil {
			return nil, err
		}
	}
	return written, nil
}

func template(cn string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certs: serial: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"chaosd"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
	}, nil
}

func loadOrMakeCA(dir string, validity time.Duration) (*x509.Certificate, crypto.Signer, []string, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if cb, err := os.ReadFile(certPath); err == nil {
		kb, err := secretfile.Read(keyPath)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("certs: %s exists but its key does not load: %w", certPath, err)
		}
		cert, key, err := parsePair(cb, kb)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("certs: existing CA in %s: %w", dir, err)
		}
		return cert, key, nil, nil
	}
	tmpl, err := template("chaosd CA", validity)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	if err := writePair(dir, "ca", tmpl, nil, nil); err != nil {
		return nil, nil, nil, err
	}
	cb, _ := os.ReadFile(certPath)
	kb, _ := os.ReadFile(keyPath)
	cert, key, err := parsePair(cb, kb)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, []string{certPath, keyPath}, nil
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("key cannot sign")
	}
	return cert, signer, nil
}

// writePair makes a P-256 key, signs tmpl with the CA (self-signed when
// ca is nil) and writes NAME.crt (0644) and NAME.key (0600).
func writePair(dir, name string, tmpl, ca *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: key for %s: %w", name, err)
	}
	if ca == nil {
		ca, caKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("certs: sign %s: %w", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: encode key of %s: %w", name, err)
	}
	if err := writeFile(KeyPath(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeFile(CertPath(dir, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path atomically with the given mode (never wider,
// whatever the umask or an earlier file's mode).
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
