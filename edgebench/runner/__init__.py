"""Plan execution: stages, the content-addressed artifact cache, resumable runs. Host side."""
