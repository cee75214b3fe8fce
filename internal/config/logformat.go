package config

import (
	"os"

	"gopkg.in/yaml.v3"
)

// LogFormatOf returns log_format as the file at path gives it (${VAR}
// expanded), read leniently: no other key is looked at, so that the
// errors of a file that does not load can still be written in the format
// it asks for. "" when the file cannot be read or parsed, or has none.
func LogFormatOf(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var v struct {
		LogFormat string `yaml:"log_format"`
	}
	if yaml.Unmarshal(data, &v) != nil {
		return ""
	}
	s, err := expandString(v.LogFormat, os.LookupEnv)
	if err != nil {
		return ""
	}
	return s
}
