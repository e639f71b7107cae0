package tasks

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger adapts slog to asynq's Logger interface.
type Logger struct{ L *slog.Logger }

func (l Logger) log(level slog.Level, args []any) {
	l.L.Log(context.Background(), level, fmt.Sprint(args...), slog.String("component", "asynq"))
}

func (l Logger) Debug(args ...any) { l.log(slog.LevelDebug, args) }
func (l Logger) Info(args ...any)  { l.log(slog.LevelInfo, args) }
func (l Logger) Warn(args ...any)  { l.log(slog.LevelWarn, args) }
func (l Logger) Error(args ...any) { l.log(slog.LevelError, args) }
func (l Logger) Fatal(args ...any) { l.log(slog.LevelError+4, args) }
