//go:build !linux

package main

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }

func lockCache(string) (func(), error) { return func() {}, nil }

func processAlive(int) bool { return true }
