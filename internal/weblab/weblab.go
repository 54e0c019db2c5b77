// Package weblab runs a pair of real web servers on loopback for tests and
// the demo: an "old" and a "new" one, each serving its own tree's docroots
// by Host header (name-based virtual hosts, as Apache and nginx do) over
// HTTP and over HTTPS with certificates from a throwaway CA. Checks and
// actions reach them by dialing their address with the domain as Host and
// SNI, exactly as they reach real servers before a DNS switch.
package weblab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CA is a throwaway certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA certificate in PEM, for ca_file: in runbooks.
	File string
}

// NewCA creates a CA and writes its certificate to dir/ca.pem.
func NewCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "decant lab CA", Organization: []string{"decant lab"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("weblab: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("weblab: %w", err)
	}
	return &CA{Cert: cert, key: key, File: file}, nil
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue signs a server certificate for names valid between the two times.
func (ca *CA) Issue(names []string, notBefore, notAfter time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("weblab: issue: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// Server is one web server of the pair.
type Server struct {
	Name string
	// Root is the tree the server's docroots live in (a runbook host root).
	Root string
	// HTTPAddr and HTTPSAddr are 127.0.0.1:PORT.
	HTTPAddr, HTTPSAddr string

	vhosts    map[string]string // domain -> docroot inside Root
	mu        sync.Mutex
	cert      *tls.Certificate
	redirects map[string]redirect // host+path -> target
	plain     *http.Server
	secure    *http.Server
	lns       []net.Listener
}

type redirect struct {
	to   string
	code int
}

// SetCert replaces the certificate served for every name.
func (s *Server) SetCert(c tls.Certificate) {
	s.mu.Lock()
	s.cert = &c
	s.mu.Unlock()
}

// Redirect makes GET host+path answer code with Location to; "" removes it.
func (s *Server) Redirect(host, path, to string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to == "" {
		delete(s.redirects, host+path)
		return
	}
	s.redirects[host+path] = redirect{to, code}
}

// Docroot is where the server finds domain's files.
func (s *Server) Docroot(domain string) string {
	return filepath.Join(s.Root, s.vhosts[domain])
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	s.mu.Lock()
	rd, ok := s.redirects[host+r.URL.Path]
	s.mu.Unlock()
	if ok {
		http.Redirect(w, r, rd.to, rd.code)
		return
	}
	dir, ok := s.vhosts[host]
	if !ok {
		http.Error(w, "no site "+host+" on this server", http.StatusNotFound)
		return
	}
	w.Header().Set("Server", "weblab-"+s.Name)
	http.FileServer(http.Dir(filepath.Join(s.Root, dir))).ServeHTTP(w, r)
}

func (s *Server) getCert(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		return nil, errors.New("no certificate")
	}
	return s.cert, nil
}

func (s *Server) start() error {
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.close()
			return fmt.Errorf("weblab: listen: %w", err)
		}
		s.lns = append(s.lns, ln)
	}
	s.HTTPAddr, s.HTTPSAddr = s.lns[0].Addr().String(), s.lns[1].Addr().String()
	// Handshake errors are the point of some tests: keep them out of test logs.
	quiet := log.New(io.Discard, "", 0)
	s.plain = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quiet}
	s.secure = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quiet,
		TLSConfig: &tls.Config{GetCertificate: s.getCert, MinVersion: tls.VersionTLS12}}
	go func() { _ = s.plain.Serve(s.lns[0]) }()
	go func() { _ = s.secure.Serve(tls.NewListener(s.lns[1], s.secure.TLSConfig)) }()
	return nil
}

func (s *Server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range []*http.Server{s.plain, s.secure} {
		if srv != nil {
			errs = append(errs, srv.Shutdown(ctx))
		}
	}
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	return errors.Join(errs...)
}

// Options configures Start.
type Options struct {
	// Dir holds the CA file. Required.
	Dir string
	// Vhosts maps each domain to its docroot as an absolute path on a host
	// (/var/www/shop); each server finds it under its own root.
	Vhosts map[string]string
	// OldRoot and NewRoot are the two trees (the runbook hosts' root: dirs).
	OldRoot, NewRoot string
	// CertValidity is how long the servers' certificates last; default 90 days.
	CertValidity time.Duration
}

// Lab is a running pair of servers and their CA.
type Lab struct {
	CA  *CA
	Old *Server
	New *Server
}

// Start starts both servers with certificates for every domain.
func Start(o Options) (*Lab, error) {
	if o.Dir == "" {
		return nil, errors.New("weblab: Options.Dir is required")
	}
	if o.CertValidity == 0 {
		o.CertValidity = 90 * 24 * time.Hour
	}
	ca, err := NewCA(o.Dir)
	if err != nil {
		return nil, err
	}
	var domains []string
	for d := range o.Vhosts {
		domains = append(domains, strings.ToLower(d))
	}
	if len(domains) == 0 {
		return nil, errors.New("weblab: no vhosts")
	}
	l := &Lab{CA: ca}
	for _, side := range []struct {
		name string
		root string
		dst  **Server
	}{{"old", o.OldRoot, &l.Old}, {"new", o.NewRoot, &l.New}} {
		s := &Server{Name: side.name, Root: side.root, vhosts: map[string]string{}, redirects: map[string]redirect{}}
		for d, p := range o.Vhosts {
			s.vhosts[strings.ToLower(d)] = p
		}
		c, err := ca.Issue(domains, time.Now().Add(-time.Hour), time.Now().Add(o.CertValidity))
		if err != nil {
			l.Close()
			return nil, err
		}
		s.SetCert(c)
		if err := s.start(); err != nil {
			l.Close()
			return nil, err
		}
		*side.dst = s
	}
	return l, nil
}

// Close stops both servers.
func (l *Lab) Close() error {
	var errs []error
	for _, s := range []*Server{l.Old, l.New} {
		if s != nil {
			errs = append(errs, s.close())
		}
	}
	return errors.Join(errs...)
}
