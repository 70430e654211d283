// A stand-in for the ManaTEE API's submit route (a Go server whose form parsing is the
// standard library's mime/multipart): it listens on 127.0.0.1, prints its port, and answers
// POST /v1/job/submit/ with the form as it parsed it, for the tests to compare.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func submit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, err)
		return
	}
	files := map[string]any{}
	for name, headers := range r.MultipartForm.File {
		f, err := headers[0].Open()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		data, _ := io.ReadAll(f)
		files[name] = map[string]any{
			"filename": headers[0].Filename,
			"type":     headers[0].Header.Get("Content-Type"),
			"size":     len(data),
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"code":   0,
		"msg":    "Success",
		"uuid":   "00000000-1111-2222-3333-444444444444",
		"fields": r.MultipartForm.Value,
		"files":  files,
	})
}

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	http.HandleFunc("/v1/job/submit/", submit)
	// ends with the test's process: stdin closed
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	panic(http.Serve(listener, nil))
}
