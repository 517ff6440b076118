module github.com/embraft/embraft

go 1.25.0
