"""routes.yaml: parsed once into frozen values (model), loaded with located errors, linted."""
