from dlrl.cli import main

raise SystemExit(main())
