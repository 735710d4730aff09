package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// Standalone, a record kind is a directory of one JSON file per record,
// named by its ID: run records (runs/) and suite run records
// (suite-runs/). In Kubernetes mode records are objects (ExperimentRun,
// SuiteRun), listed by listObjects.

// validFileID reports whether id can name a record file: not empty, at
// most maxIDBytes, no path separator, NUL or dot (no "..", no hidden
// file, no second extension).
func validFileID(id string) bool {
	return id != "" && len(id) <= maxIDBytes && !strings.ContainsAny(id, "/\\.\x00")
}

// saveRecord writes record r (ID id) into sub atomically and durably.
func saveRecord(s *Store, sub, what, id string, r any) error {
	if !validFileID(id) {
		return fmt.Errorf("save %s: invalid id %q", what, id)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", what, id, err)
	}
	dir := filepath.Join(s.dir, sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return s.writeFileAtomic(filepath.Join(dir, id+".json"), data)
}

// getRecord reads the record id of sub (os.ErrNotExist when unknown or
// when id cannot be one, without naming the directory).
func getRecord[T any](s *Store, sub, what, id string) (T, error) {
	var r T
	if !validFileID(id) {
		return r, fmt.Errorf("%s %.64q: %w", what, id, os.ErrNotExist)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, sub, id+".json"))
	if err != nil {
		return r, fmt.Errorf("read %s %s: %w", what, id, err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("decode %s %s: %w", what, id, err)
	}
	return r, nil
}

// listRecords reads every record of sub, newest first (by created, then
// by ID). A record that cannot be read is in the error and does not hide
// the others; a directory that does not exist yet holds none.
func listRecords[T any](s *Store, sub, what string, created func(T) (time.Time, string)) ([]T, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, sub))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", what, err)
	}
	var (
		out  []T
		errs []error
	)
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validFileID(id) {
			continue
		}
		r, err := getRecord[T](s, sub, what, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	newestFirst(out, created)
	return out, errors.Join(errs...)
}

// newestFirst sorts records by creation, newest first, then by ID.
func newestFirst[T any](out []T, created func(T) (time.Time, string)) {
	sort.Slice(out, func(i, j int) bool {
		ti, idi := created(out[i])
		tj, idj := created(out[j])
		if ti.Equal(tj) {
			return idi > idj
		}
		return ti.After(tj)
	})
}

// listObjects lists every object of res (in pages of 500), decoded by
// decode, newest first. An object that cannot be decoded is in the error
// and does not hide the others.
func listObjects[T any](res dynamic.ResourceInterface, kind string, decode func(*unstructured.Unstructured) (T, error),
	created func(T) (time.Time, string),
) ([]T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubeCallTimeout)
	defer cancel()
	var (
		out  []T
		errs []error
	)
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := res.List(ctx, opts)
		if err != nil {
			return out, fmt.Errorf("list %ss: %w", kind, err)
		}
		for i := range l.Items {
			r, err := decode(&l.Items[i])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, r)
		}
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			break
		}
	}
	newestFirst(out, created)
	return out, errors.Join(errs...)
}
