from dlrl.sft.cli import main

raise SystemExit(main())
