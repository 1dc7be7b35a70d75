package main

func cmdData(args []string, e *env) error { return usagef("data: not yet available") }
