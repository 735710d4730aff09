// Package tlsconf builds the TLS configurations of chaosd's and the
// agents' TCP listeners and of their clients from PEM files named in the
// configuration (so cert-manager or a Kubernetes Secret can supply them).
// Key files are checked like every credential (package secretfile); a
// certificate and key pair is re-read when its files change, so a renewed
// certificate is served without a restart. TLS 1.2 is the minimum.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/chaosd/chaosd/internal/secretfile"
)

// MinVersion is the oldest TLS version spoken (1.3 is negotiated when
// both ends have it, which is always the case between chaosd's parts).
const MinVersion = tls.VersionTLS12

// ServerFiles name a server's certificate, key and, for mutual TLS, the
// CA its clients' certificates must chain to.
type ServerFiles struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the server require a client
	// certificate signed by this CA.
	ClientCAFile string
}

// ClientFiles name what a client trusts and, for mutual TLS, presents.
type ClientFiles struct {
	// CAFile is the CA the server's certificate must chain to (empty: the
	// system's roots).
	CAFile string
	// CertFile and KeyFile are the client certificate (both or neither).
	CertFile, KeyFile string
	// ServerName, when set, is the name the server's certificate must
	// carry instead of the host dialled (e.g. one certificate shared by
	// every agent of a DaemonSet, reached by IP).
	ServerName string
}

// Server returns the configuration of a TLS listener.
func Server(f ServerFiles) (*tls.Config, error) {
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("tls: a certificate file and a key file are required")
	}
	kp, err := newKeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: MinVersion, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() }}
	if f.ClientCAFile != "" {
		pool, err := loadPool(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// Client returns the configuration of a TLS client.
func Client(f ClientFiles) (*tls.Config, error) {
	c := &tls.Config{MinVersion: MinVersion, ServerName: f.ServerName}
	if f.CAFile != "" {
		pool, err := loadPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		kp, err := newKeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("tls: a client certificate needs both its certificate file and its key file")
	}
	return c, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// keyPair is a certificate and its key, re-read when either file's
// modification time changes (checked at most every reloadEvery).
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

const reloadEvery = 10 * time.Second

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPair) stamps() ([2]time.Time, error) {
	var s [2]time.Time
	for i, p := range []string{kp.certFile, kp.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return s, err
		}
		s[i] = fi.ModTime()
	}
	return s, nil
}

func (kp *keyPair) load() error {
	st, err := kp.stamps()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	certPEM, err := os.ReadFile(kp.certFile)
	if err != nil {
		return fmt.Errorf("tls: read certificate: %w", err)
	}
	keyPEM, err := secretfile.Read(kp.keyFile)
	if err != nil {
		return fmt.Errorf("tls: key file: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: %s and %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.stamp, kp.checked = &c, st, time.Now()
	return nil
}

// get returns the current pair; a failed reload keeps the last good one.
func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if time.Since(kp.checked) >= reloadEvery {
		kp.checked = time.Now()
		if st, err := kp.stamps(); err == nil && st != kp.stamp {
			_ = kp.load()
		}
	}
	return kp.cert, nil
}
