"""Development only: the local stack (`make run`) and the test support. No service or image depends on it."""
