"""Export torch models to deployable artifacts, check parity against the torch twin, and write the
model card that travels with each artifact. Host side."""
