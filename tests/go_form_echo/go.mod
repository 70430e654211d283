module manateetests/goformecho

go 1.22
