module bulkhead.example/abitest

go 1.19
