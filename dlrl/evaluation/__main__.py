from dlrl.evaluation.cli import main

raise SystemExit(main())
