package main

import (
	"io"

	"go.uber.org/zap/zapcore"
)

func zapcoreFor(enc zapcore.EncoderConfig, w io.Writer, lvl zapcore.Level) zapcore.Core {
	return zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), lvl)
}
