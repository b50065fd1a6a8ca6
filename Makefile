# Convenience wrappers around tasks.py, which does the work (and needs nothing but Python 3.11).
.PHONY: study book test setup
study:
	python3 tasks.py study
book:
	python3 tasks.py book
test:
	python3 tasks.py test
setup:
	python3 tasks.py setup
