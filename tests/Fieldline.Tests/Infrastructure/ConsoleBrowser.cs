using Microsoft.Playwright;
using Xunit.Sdk;

namespace Fieldline.Tests.Infrastructure;

/// <summary>
/// Debian's Chromium driven by Playwright (its own browser download is not available here): headless, no sandbox, no
/// GPU, a fresh user-data directory per browser. Screenshots go to <c>artifacts/screenshots/</c> of the repository.
/// </summary>
internal sealed class ConsoleBrowser : IAsyncDisposable
{
    /// <summary>
    /// The xUnit collection of every browser test: one Chromium at a time. Several at once on two cores starved each
    /// other until a page's load event took longer than the timeout.
    /// </summary>
    public const string Collection = "Console browser";

    public const string ChromiumPath = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;
    private readonly string _profile;

    private ConsoleBrowser(IPlaywright playwright, IBrowserContext context, string profile)
    {
        _playwright = playwright;
        Context = context;
        _profile = profile;
    }

    public IBrowserContext Context { get; }

    public static async Task<ConsoleBrowser> LaunchAsync(int width = 1280, int height = 800)
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new XunitException($"Chromium is missing at {ChromiumPath}: build/test.sh installs it (apt-get install chromium).");
        }

        var playwright = await Playwright.CreateAsync();
        var profile = TestEnvironment.NewTempDirectory();
        var context = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu"],
            ViewportSize = new ViewportSize { Width = width, Height = height },
        });
        // Generous: on CI's two cores Chromium shares the CPU with the server and the other test classes.
        context.SetDefaultTimeout(30_000);
        return new ConsoleBrowser(playwright, context, profile);
    }

    public async Task<IPage> NewPageAsync() => await Context.NewPageAsync();

    /// <summary>A new page on <paramref name="path"/>, signed in with the admin key through the sign-in form it is sent to.</summary>
    public async Task<IPage> OpenSignedInAsync(TestEnvironment env, string path)
    {
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(env.Application.HttpUrl, path).ToString());
        await page.GetByLabel("Admin API key").FillAsync(TestEnvironment.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await WaitForPageAsync(page, url => !url.Contains("/sign-in", StringComparison.Ordinal));
        return page;
    }

    /// <summary>
    /// Waits until the page's address satisfies <paramref name="url"/> and the new page is parsed. It polls the
    /// address rather than waiting for Playwright's navigation events: in a few CI runs such a wait timed out although
    /// the page had been served (the log showed the network idle), and a failure here names the address seen.
    /// </summary>
    public static async Task WaitForPageAsync(IPage page, Func<string, bool> url)
    {
        await Poll.UntilAsync(() => Task.FromResult(page.Url), url, "the page's address to match", TimeSpan.FromSeconds(30));

        // The last element of every page's body: once it is attached, the whole page is parsed.
        await page.Locator("script[src*='live.js']").WaitForAsync(new() { State = WaitForSelectorState.Attached });
    }

    /// <summary>
    /// Clicks a form's submit button and waits until the page it leads to is parsed. A post that redirects back to the
    /// same address (post, redirect, get) changes no URL to wait for, and reading the page before the new one loaded
    /// would read the old one.
    /// </summary>
    public static async Task SubmitAsync(IPage page, ILocator button)
    {
        var loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLoad(object? sender, IPage loadedPage) => loaded.TrySetResult();
        page.DOMContentLoaded += OnLoad;
        try
        {
            await button.ClickAsync();
            await loaded.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            page.DOMContentLoaded -= OnLoad;
        }
    }

    /// <summary>Waits until <paramref name="locator"/>'s text satisfies <paramref name="condition"/> (bounded), and returns it.</summary>
    public static Task<string> TextWhenAsync(ILocator locator, Func<string, bool> condition, string what) =>
        Poll.UntilAsync(async () => await locator.InnerTextAsync(), condition, what);

    /// <summary>Saves a full-page screenshot as <c>artifacts/screenshots/{name}.png</c>.</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        var directory = Path.Combine(RepositoryRoot(), "artifacts", "screenshots");
        Directory.CreateDirectory(directory);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory, name + ".png"), FullPage = true });
    }

    public async ValueTask DisposeAsync()
    {
        await Context.DisposeAsync();
        _playwright.Dispose();
        try
        {
            Directory.Delete(_profile, recursive: true);
        }
        catch (IOException)
        {
            // Chromium may still hold a file for a moment; the temp directory is cleaned with the machine.
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Fieldline.sln")))
            {
                return directory.FullName;
            }
        }

        return Path.GetTempPath();
    }
}

/// <summary>Runs the browser tests one at a time (see <see cref="ConsoleBrowser.Collection"/>).</summary>
[CollectionDefinition(ConsoleBrowser.Collection, DisableParallelization = true)]
public sealed class ConsoleBrowserCollection;
