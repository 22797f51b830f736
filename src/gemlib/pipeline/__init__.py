"""The pipeline runtime: the stage contract, the composable pipeline, the runner and stores."""
