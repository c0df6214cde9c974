package main

import (
	"context"
	"errors"
	"io"
)

func runBench(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
	return errors.New("not built yet")
}
