package main

func cmdEval(args []string, e *env) error   { return usagef("eval: not yet available") }
func cmdDream(args []string, e *env) error  { return usagef("dream: not yet available") }
func cmdReport(args []string, e *env) error { return usagef("report: not yet available") }
func cmdData(args []string, e *env) error   { return usagef("data: not yet available") }
