using Fieldline.Cli;

return await FieldlineCommandLine.Create().Parse(args).InvokeAsync();
